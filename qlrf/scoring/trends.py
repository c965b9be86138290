"""Drift trends across the daily partitions, and a week-ahead forecast per site.

Method (stated in every output row): ordinary least squares of the daily drift score against the
day number over the last `window` days that have a partition (DuckDB regr_slope/regr_intercept),
forecast = intercept + slope x (today + 7), clamped to 0-100. With fewer than three days of history
the forecast carries today's score forward. Deliberately simple and explainable: a site manager can
redo it with a ruler, and it answers the question that matters, "is this site getting worse?".
"""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa

from qlrf import sql
from qlrf.inventory.contract import PLATFORMS
from qlrf.warehouse import Warehouse

WINDOW_DAYS = 28
HORIZON_DAYS = 7

_QUERY = f"""
WITH daily AS (
    SELECT day, site, environment,
           sum(drift_score * vms) / sum(vms) AS drift_score, sum(vms) AS vms,
           sum(on_current) * 100.0 / sum(vms) AS pct_current
    FROM history GROUP BY day, site, environment
),
fit AS (
    SELECT site, environment, count(*) AS days,
           regr_slope(drift_score, epoch(day) / 86400) AS slope,
           regr_intercept(drift_score, epoch(day) / 86400) AS intercept,
           arg_max(drift_score, day) AS today_score,
           arg_max(pct_current, day) AS today_pct_current,
           arg_max(vms, day) AS vms,
           max(day) AS last_day,
           arg_min(drift_score, day) AS first_score, min(day) AS first_day
    FROM daily GROUP BY site, environment
)
SELECT site, environment, days::INTEGER AS days_of_history, vms::INTEGER AS vms,
       round(today_score, 2) AS drift_score, round(today_pct_current, 2) AS pct_current,
       round(coalesce(slope, 0) * 7, 2) AS change_per_week,
       round(CASE WHEN days >= 3
                  THEN least(100, greatest(0, intercept + slope * (epoch(last_day) / 86400 + {HORIZON_DAYS})))
                  ELSE today_score END, 2) AS forecast_next_week,
       CASE WHEN days >= 3 THEN 'least squares over ' || days || ' daily partitions'
            ELSE 'carry forward (fewer than 3 days of history)' END AS method,
       CASE WHEN days < 3 THEN 'unknown'
            WHEN slope * 7 > 1 THEN 'worsening' WHEN slope * 7 < -1 THEN 'improving' ELSE 'steady' END AS trend
FROM fit ORDER BY forecast_next_week DESC, site, environment
"""


def history(wh: Warehouse, day: date, window: int = WINDOW_DAYS) -> pa.Table | None:
    """drift_scores of every platform for the `window` days up to `day`, with a `day` column."""
    tables = []
    for offset in range(window):
        d = day - timedelta(days=offset)
        for platform in PLATFORMS:
            if wh.exists("drift_scores", d, platform):
                t = wh.read("drift_scores", d, platform)
                tables.append(t.append_column("day", pa.array([d] * t.num_rows, pa.date32())))
    return pa.concat_tables(tables, promote_options="default") if tables else None


def drift_trends(wh: Warehouse, day: date, window: int = WINDOW_DAYS) -> pa.Table:
    hist = history(wh, day, window)
    if hist is None:
        raise FileNotFoundError(f"no drift_scores partitions in the {window} days up to {day}")
    con = sql.connect()
    sql.relation(con, "history", hist)
    return sql.table(con, _QUERY.replace("epoch(day)", "epoch(day::TIMESTAMP)").replace("epoch(last_day)", "epoch(last_day::TIMESTAMP)"))
