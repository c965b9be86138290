"""DR readiness: could we recover each VM, and how exposed is each site?

A VM is ready when it has a restore point within its environment's RPO and it can be rebuilt from
a known, non-revoked golden image (a VM on an unknown image cannot be rebuilt the same way).
Uses the `facts` view built by qlrf.scoring.compliance.prepare_facts.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from qlrf import sql

VM_QUERY = """
SELECT asset_id, platform, account, region, site, environment, state, last_snapshot_at,
       round(snapshot_age_hours, 2) AS snapshot_age_hours, rpo_hours,
       coalesce(snapshot_age_hours <= rpo_hours, false) AS rpo_met,
       status IN ('current', 'behind') AS rebuildable,
       coalesce(snapshot_age_hours <= rpo_hours, false) AND status IN ('current', 'behind') AS ready,
       CASE WHEN last_snapshot_at IS NULL THEN 'no restore point'
            WHEN snapshot_age_hours > rpo_hours THEN 'restore point older than RPO'
            WHEN status NOT IN ('current', 'behind') THEN 'cannot rebuild from a golden image'
            ELSE NULL END AS gap
FROM facts WHERE state <> 'terminated'
"""

SCORES_QUERY = """
SELECT platform, site, environment, count(*)::INTEGER AS vms,
       count(*) FILTER (WHERE ready)::INTEGER AS ready_vms,
       round(100.0 * count(*) FILTER (WHERE ready) / count(*), 2) AS dr_readiness,
       count(*) FILTER (WHERE NOT rpo_met)::INTEGER AS rpo_breaches,
       round(quantile_cont(snapshot_age_hours, 0.95), 1) AS p95_snapshot_age_hours
FROM vm_dr GROUP BY ALL ORDER BY platform, site, environment
"""


def vm_dr(con: duckdb.DuckDBPyConnection) -> pa.Table:
    return sql.table(con, VM_QUERY)


def dr_scores(vm_dr_table: pa.Table | str, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    con = con or sql.connect()
    sql.relation(con, "vm_dr", vm_dr_table)
    return sql.table(con, SCORES_QUERY)
