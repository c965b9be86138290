"""DR readiness: could we recover each VM, have we proved it, and how exposed is each site?

A VM is *ready* when it has a restore point within its environment's RPO and it can be rebuilt from
a known, non-revoked golden image (a VM on an unknown image cannot be rebuilt the same way). That
inference is not proof, so each VM also carries its *drill evidence* from ``dr_drills`` (the drill
runner's journal, qlrf.dr.records), and a 0-100 *readiness score* combines the three:

    readiness_score = 40 x rpo_met + 30 x rebuildable + 30 x drill_credit

``drill_credit`` comes from the VM's newest drill in the 180 days up to the end of the scored day
(time is an input: ``as_of``, never the clock). When that drill passed, it counts fully for 30 days,
then decays linearly to zero at 180 days: ``credit = clamp((180 - age_days) / 150, 0, 1)``. When it
failed, timed out or deviated the credit is 0, and the whole site (every environment and platform of
the site: the drills of every platform are read) is capped at :data:`FAILED_DRILL_CAP` until a later
drill of that VM passes:
a recovery that was tried and did not work outranks any inference. An RTO measured above its
objective is a named gap (``drill_gap``) and counted per site (``rto_gaps``).

Uses the `facts` view built by qlrf.scoring.compliance.prepare_facts and a `drills` relation (rows of
the dr_drills schema; an empty one when no drill was ever recorded: readiness still computes, with no
credit and the gap "no drill in 180 days").
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from qlrf import sql

FULL_CREDIT_DAYS = 30
ZERO_CREDIT_DAYS = 180
FAILED_DRILL_CAP = 50.0
WEIGHTS = {"rpo_met": 40, "rebuildable": 30, "drill_credit": 30}
UNSUCCESSFUL = ("failed", "timed_out", "deviated")
DRILL_GAPS = {
    "none": f"no drill in {ZERO_CREDIT_DAYS} days",
    "failed": "last drill failed",
    "timed_out": "last drill timed out",
    "deviated": "last drill deviated",
    "rto": "RTO measured above objective",
    "stale": f"last drill older than {FULL_CREDIT_DAYS} days (credit decaying)",
}

_AGE_DAYS = "((epoch(n.as_of) - epoch(e.last_drill_at)) / 86400.0)"

VM_QUERY = f"""
WITH ev AS (
    SELECT asset_id, max(started_at) AS last_drill_at, arg_max(drill_id, started_at) AS last_drill_id,
           arg_max(outcome, started_at) AS last_drill_outcome,
           arg_max(rto_seconds, started_at) AS rto_measured_seconds,
           arg_max(rto_objective_seconds, started_at) AS rto_objective_seconds,
           arg_max(rpo_achieved_seconds, started_at) AS rpo_achieved_seconds
    FROM drills, facts_as_of n
    WHERE started_at <= n.as_of AND started_at > n.as_of - INTERVAL {ZERO_CREDIT_DAYS} DAY
    GROUP BY asset_id
),
failed_sites AS (  -- sites (any platform) where a VM's newest drill in the window did not pass
    SELECT DISTINCT site FROM (
        SELECT asset_id, arg_max(outcome, started_at) AS outcome, arg_max(site, started_at) AS site
        FROM drills, facts_as_of n
        WHERE started_at <= n.as_of AND started_at > n.as_of - INTERVAL {ZERO_CREDIT_DAYS} DAY GROUP BY asset_id)
    WHERE outcome IN ({", ".join(f"'{o}'" for o in UNSUCCESSFUL)}) AND site IS NOT NULL
),
base AS (
    SELECT f.asset_id, f.platform, f.account, f.region, f.site, f.environment, f.org, f.project, f.state, f.last_snapshot_at,
           round(f.snapshot_age_hours, 2) AS snapshot_age_hours, f.rpo_hours,
           coalesce(f.snapshot_age_hours <= f.rpo_hours, false) AS rpo_met,
           f.status IN ('current', 'behind') AS rebuildable,
           CASE WHEN f.last_snapshot_at IS NULL THEN 'no restore point'
                WHEN f.snapshot_age_hours > f.rpo_hours THEN 'restore point older than RPO'
                WHEN f.status NOT IN ('current', 'behind') THEN 'cannot rebuild from a golden image'
                ELSE NULL END AS gap,
           f.instance_type, f."group", map_extract_value(f.tags, 'app') AS app,
           coalesce(f."group", 'app:' || map_extract_value(f.tags, 'app') || '/' || f.environment,
                    'ungrouped/' || f.environment) AS dr_group,
           e.last_drill_id, e.last_drill_at, e.last_drill_outcome, e.rto_measured_seconds, e.rto_objective_seconds,
           e.rpo_achieved_seconds,
           round(CASE WHEN e.last_drill_outcome = 'passed'
                      THEN least(1.0, greatest(0.0, ({ZERO_CREDIT_DAYS} - {_AGE_DAYS}) / {ZERO_CREDIT_DAYS - FULL_CREDIT_DAYS}.0))
                      ELSE 0.0 END, 4) AS drill_credit,
           coalesce(e.rto_measured_seconds > e.rto_objective_seconds, false) AS rto_over_objective,
           CASE WHEN e.last_drill_at IS NULL THEN '{DRILL_GAPS["none"]}'
                WHEN e.last_drill_outcome = 'failed' THEN '{DRILL_GAPS["failed"]}'
                WHEN e.last_drill_outcome = 'timed_out' THEN '{DRILL_GAPS["timed_out"]}'
                WHEN e.last_drill_outcome = 'deviated' THEN '{DRILL_GAPS["deviated"]}'
                WHEN e.rto_measured_seconds > e.rto_objective_seconds THEN '{DRILL_GAPS["rto"]}'
                WHEN {_AGE_DAYS} > {FULL_CREDIT_DAYS} THEN '{DRILL_GAPS["stale"]}'
                ELSE NULL END AS drill_gap,
           f.site IN (SELECT site FROM failed_sites) AS site_capped
    FROM facts f
    LEFT JOIN ev e USING (asset_id)
    CROSS JOIN facts_as_of n
    WHERE f.state <> 'terminated'
)
SELECT asset_id, platform, account, region, site, environment, state, last_snapshot_at, snapshot_age_hours, rpo_hours,
       rpo_met, rebuildable, rpo_met AND rebuildable AS ready, gap,
       instance_type, "group", app, dr_group, last_drill_id, last_drill_at, last_drill_outcome, rto_measured_seconds,
       rto_objective_seconds, rpo_achieved_seconds, drill_credit, rto_over_objective, drill_gap, site_capped,
       round({WEIGHTS["rpo_met"]} * rpo_met::INTEGER + {WEIGHTS["rebuildable"]} * rebuildable::INTEGER
             + {WEIGHTS["drill_credit"]} * drill_credit, 2) AS readiness_score,
       org, project
FROM base
"""

_UNSUCCESSFUL_SQL = ", ".join(f"'{o}'" for o in UNSUCCESSFUL)

SCORES_QUERY = f"""
WITH g AS (
    SELECT platform, site, environment, count(*)::INTEGER AS vms,
           count(*) FILTER (WHERE ready)::INTEGER AS ready_vms,
           round(100.0 * count(*) FILTER (WHERE ready) / count(*), 2) AS dr_readiness,
           count(*) FILTER (WHERE NOT rpo_met)::INTEGER AS rpo_breaches,
           round(quantile_cont(snapshot_age_hours, 0.95), 1) AS p95_snapshot_age_hours,
           avg(readiness_score) AS raw_score,
           round(100.0 * avg(drill_credit), 2) AS drill_credit,
           count(*) FILTER (WHERE last_drill_outcome = 'passed' AND drill_credit > 0)::INTEGER AS drilled_vms,
           count(*) FILTER (WHERE last_drill_outcome = 'passed' AND drill_credit < 1)::INTEGER AS stale_drill_vms,
           count(*) FILTER (WHERE last_drill_at IS NULL)::INTEGER AS no_drill_vms,
           count(*) FILTER (WHERE last_drill_outcome IN ({_UNSUCCESSFUL_SQL}))::INTEGER AS failed_drill_vms,
           count(*) FILTER (WHERE rto_over_objective)::INTEGER AS rto_gaps,
           max(last_drill_at) AS last_drill_at, bool_or(site_capped) AS site_capped
    FROM vm_dr GROUP BY platform, site, environment
)
SELECT platform, site, environment, vms, ready_vms, dr_readiness, rpo_breaches, p95_snapshot_age_hours,
       round(CASE WHEN site_capped THEN least({FAILED_DRILL_CAP}, raw_score) ELSE raw_score END, 2) AS readiness_score,
       drill_credit, drilled_vms, stale_drill_vms, no_drill_vms, failed_drill_vms, rto_gaps, last_drill_at,
       site_capped AS capped,
       CASE WHEN site_capped THEN 'capped at {FAILED_DRILL_CAP:g}: a drill at this site failed, timed out or deviated'
            ELSE NULL END AS cap_reason
FROM g ORDER BY platform, site, environment
"""


def register_drills(con: duckdb.DuckDBPyConnection, drills: pa.Table | None) -> None:
    """The `drills` relation VM_QUERY joins: the given dr_drills rows, or none (no evidence, no credit)."""
    if drills is None:
        from qlrf.dr.records import SCHEMA

        drills = SCHEMA.empty_table()
    sql.relation(con, "drills", drills)


def vm_dr(con: duckdb.DuckDBPyConnection, drills: pa.Table | None = None) -> pa.Table:
    register_drills(con, drills)
    return sql.table(con, VM_QUERY)


def dr_scores(vm_dr_table: pa.Table | str, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    con = con or sql.connect()
    sql.relation(con, "vm_dr", vm_dr_table)
    return sql.table(con, SCORES_QUERY)
