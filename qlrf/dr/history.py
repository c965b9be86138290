"""Drill history: one line per drill (its VMs rolled up), with the credit it still earns on a day.

What `qlrf dr history`, the DR page and the fleet report show. RTO and RPO are reported against the
drill's own objectives (median and worst over its VMs), and ``credit_now`` is the readiness credit
a passed drill still gives at the end of ``as_of`` (qlrf.scoring.dr: full for 30 days, linear to 0 at 180).
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from qlrf import sql
from qlrf.dr.records import drill_history
from qlrf.scoring.dr import FULL_CREDIT_DAYS, ZERO_CREDIT_DAYS
from qlrf.warehouse import Warehouse

_QUERY = f"""
SELECT drill_id, any_value(plan_id) AS plan_id, min(started_at) AS started_at,
       string_agg(DISTINCT platform, ',' ORDER BY platform) AS platform,
       string_agg(DISTINCT site, ',' ORDER BY site) AS site,
       string_agg(DISTINCT environment, ',' ORDER BY environment) AS environment,
       any_value(target) AS target, count(*)::INTEGER AS vms,
       count(*) FILTER (WHERE outcome = 'passed')::INTEGER AS passed_vms,
       CASE WHEN bool_and(outcome = 'passed') THEN 'passed'
            WHEN bool_or(outcome = 'failed') THEN 'failed'
            WHEN bool_or(outcome = 'timed_out') THEN 'timed_out' ELSE 'deviated' END AS outcome,
       round(median(rto_seconds), 1) AS rto_median_seconds, round(max(rto_seconds), 1) AS rto_max_seconds,
       max(rto_objective_seconds) AS rto_objective_seconds,
       count(*) FILTER (WHERE rto_seconds > rto_objective_seconds)::INTEGER AS rto_over_objective_vms,
       round(max(rpo_achieved_seconds), 1) AS rpo_achieved_max_seconds,
       max(rpo_objective_seconds) AS rpo_objective_seconds,
       count(*) FILTER (WHERE rpo_achieved_seconds > rpo_objective_seconds)::INTEGER AS rpo_over_objective_vms,
       bool_and(cleaned_up) AS cleaned_up,
       string_agg(DISTINCT reason, '; ') AS reasons,
       round((epoch($as_of::TIMESTAMPTZ) - epoch(min(started_at))) / 86400.0, 1) AS age_days,
       CASE WHEN bool_and(outcome = 'passed')
            THEN round(least(1.0, greatest(0.0, ({ZERO_CREDIT_DAYS} - (epoch($as_of::TIMESTAMPTZ) - epoch(min(started_at))) / 86400.0)
                                          / {ZERO_CREDIT_DAYS - FULL_CREDIT_DAYS}.0)), 3)
            ELSE 0.0 END AS credit_now
FROM drills
WHERE ($site::VARCHAR IS NULL OR site = $site) AND ($platform::VARCHAR IS NULL OR platform = $platform)
GROUP BY drill_id ORDER BY started_at DESC, drill_id
"""


def drill_summary(wh: Warehouse, as_of: date, days: int = ZERO_CREDIT_DAYS, site: str | None = None,
                  platform: str | None = None) -> pa.Table:
    """One row per drill that started in the `days` up to the end of `as_of`, newest first."""
    from qlrf.dr.simulation import end_of_day

    con = sql.connect(2)
    sql.relation(con, "drills", drill_history(wh, as_of, days, platform))
    return sql.table(con, _QUERY, {"as_of": end_of_day(as_of), "site": site, "platform": platform})


__all__ = ["drill_summary"]
