"""Drift: is each VM on the current golden image for its environment's channel, and how far behind?

Status per VM: current | behind | revoked | unknown (image not in the registry) | unmanaged (no
image recorded). Severity weights make a 0-100 drift score per site x environment x platform,
where 0 means every VM is on the current golden image and 100 means everything is critical.

All of it is DuckDB SQL over the `inventory` and `registry` relations (Arrow tables or Parquet
files), so a million VMs stream from Parquet to Parquet without a detour through Python objects.
Day differences use epoch arithmetic: DuckDB's calendar-aware date_diff on TIMESTAMPTZ costs ~1 s
per million rows here, the subtraction ~0.05 s.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa

from qlrf import sql
from qlrf.tenancy import model as tenancy

SEVERITY_WEIGHT = {"none": 0, "low": 25, "medium": 50, "high": 75, "critical": 100}
WEIGHT_SQL = "CASE severity WHEN 'none' THEN 0 WHEN 'low' THEN 25 WHEN 'medium' THEN 50 WHEN 'high' THEN 75 ELSE 100 END"

_LADDER = """
CREATE OR REPLACE TEMP TABLE ladder AS
WITH levels AS (SELECT * FROM (VALUES (0), (1), (2)) l(level)),
versions AS (
    SELECT DISTINCT family, version, version_rank, released_at, channel_level, revoked FROM registry
),
eligible AS (
    SELECT l.level, v.* FROM versions v JOIN levels l ON v.channel_level >= l.level WHERE NOT v.revoked
),
current AS (
    SELECT family, level, max_by(version, version_rank) AS current_version,
           max(version_rank) AS current_rank, max_by(released_at, version_rank) AS current_released_at
    FROM eligible GROUP BY family, level
)
-- For every (family, level, rank): how many eligible versions are newer, up to the current one.
SELECT c.family, c.level, v.version_rank, c.current_version, c.current_released_at,
       (SELECT count(*) FROM eligible e WHERE e.family = c.family AND e.level = c.level
           AND e.version_rank > v.version_rank AND e.version_rank <= c.current_rank) AS versions_behind
FROM current c JOIN versions v ON v.family = c.family
"""

_IMAGES = """
CREATE OR REPLACE TEMP TABLE images AS
SELECT platform, image_ref, any_value(family) AS family, any_value(version) AS version,
       any_value(version_rank) AS version_rank, any_value(channel) AS channel,
       any_value(released_at) AS released_at, bool_or(revoked) AS revoked,
       any_value(revoked_reason) AS revoked_reason
FROM registry GROUP BY platform, image_ref
"""


def _days(later: str, earlier: str) -> str:
    return f"((epoch({later}) - epoch({earlier})) // 86400)::INTEGER"


def vm_drift_query() -> str:
    """One row per inventoried VM; needs prepare() on the connection and the parameter `$as_of`
    (see vm_drift_params): the instant is a value, not text pasted into the query."""
    now = "$as_of::TIMESTAMPTZ"
    return f"""
WITH joined AS (
    SELECT i.asset_id, i.platform, i.account, i.region, coalesce(i.site, 'unassigned') AS site,
           coalesce(i.environment, 'unknown') AS environment, i.owner, i."group", i.state, i.image_ref,
           i.org, i.project,
           g.family, g.version AS image_version, g.channel AS image_channel, g.released_at AS image_released_at,
           g.revoked, g.revoked_reason, g.version_rank,
           coalesce(CASE i.environment WHEN 'dev' THEN 0 WHEN 'staging' THEN 1 END, 2) AS level
    FROM inventory i LEFT JOIN images g ON g.platform = i.platform AND g.image_ref = i.image_ref
)
SELECT j.* EXCLUDE (version_rank, level, revoked, org, project),
       l.current_version,
       CASE WHEN j.family IS NULL OR j.revoked THEN NULL ELSE l.versions_behind END::INTEGER AS versions_behind,
       CASE WHEN j.family IS NULL OR j.revoked THEN NULL
            ELSE greatest(0, {_days('l.current_released_at', 'j.image_released_at')}) END AS days_behind,
       {_days(now, 'j.image_released_at')} AS image_age_days,
       CASE WHEN j.image_ref IS NULL THEN 'unmanaged'
            WHEN j.family IS NULL THEN 'unknown'
            WHEN j.revoked THEN 'revoked'
            WHEN l.versions_behind = 0 THEN 'current'
            ELSE 'behind' END AS status,
       CASE WHEN j.image_ref IS NULL THEN 'medium'
            WHEN j.family IS NULL THEN 'high'
            WHEN j.revoked THEN 'critical'
            WHEN l.versions_behind = 0 THEN 'none'
            WHEN l.versions_behind >= 3 OR {_days('l.current_released_at', 'j.image_released_at')} > 90 THEN 'high'
            WHEN l.versions_behind = 2 THEN 'medium'
            ELSE 'low' END AS severity,
       j.org, j.project
FROM joined j
LEFT JOIN ladder l ON l.family = j.family AND l.level = j.level AND l.version_rank = j.version_rank
"""


SCORES_QUERY = f"""
SELECT platform, site, environment, count(*)::INTEGER AS vms,
       count(*) FILTER (WHERE status = 'current')::INTEGER AS on_current,
       round(100.0 * count(*) FILTER (WHERE status = 'current') / count(*), 2) AS pct_current,
       count(*) FILTER (WHERE status = 'revoked')::INTEGER AS revoked,
       count(*) FILTER (WHERE status IN ('unknown', 'unmanaged'))::INTEGER AS unmanaged_or_unknown,
       round(avg({WEIGHT_SQL}), 2) AS drift_score
FROM vm_drift GROUP BY ALL ORDER BY platform, site, environment
"""


def vm_drift_params(as_of: datetime) -> dict[str, datetime]:
    return {"as_of": as_of}


def prepare(con: duckdb.DuckDBPyConnection, inventory: pa.Table | str, registry: pa.Table | str) -> None:
    tenancy.relation(con, "inventory", inventory)  # org/project filled for 1.0 partitions
    sql.relation(con, "registry", registry)
    con.execute(_LADDER)
    con.execute(_IMAGES)


def vm_drift(
    inventory: pa.Table | str, registry: pa.Table | str, as_of: datetime, con: duckdb.DuckDBPyConnection | None = None
) -> pa.Table:
    con = con or sql.connect()
    prepare(con, inventory, registry)
    return sql.table(con, vm_drift_query(), vm_drift_params(as_of))


def drift_scores(vm_drift_table: pa.Table | str, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    con = con or sql.connect()
    sql.relation(con, "vm_drift", vm_drift_table)
    return sql.table(con, SCORES_QUERY)
