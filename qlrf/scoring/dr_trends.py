"""DR readiness trends: is each site x environment x platform getting more or less recoverable?

The same method as the drift trends (qlrf.scoring.trends), stated in every row: least squares of the
daily readiness score (0-100, drill credit and caps included) against the day number over the last
`window` days that have a dr_scores partition; change per week = slope x 7; with fewer than three
days of history the trend is "unknown". Because drill credit decays by itself, a site that stops
drilling shows up here as "worsening" weeks before its credit reaches zero.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from qlrf import sql
from qlrf.inventory.contract import PLATFORMS
from qlrf.scoring.trends import WINDOW_DAYS
from qlrf.warehouse import Warehouse

_QUERY = """
WITH daily AS (
    SELECT CAST(regexp_extract(filename, 'date=([0-9-]+)', 1) AS DATE) AS day, platform, site, environment,
           readiness_score, drill_credit, vms, capped
    FROM src
),
fit AS (
    SELECT platform, site, environment, count(*) AS days,
           regr_slope(readiness_score, epoch(day::TIMESTAMP) / 86400) AS slope,
           arg_max(readiness_score, day) AS today_score, arg_max(drill_credit, day) AS today_credit,
           arg_max(vms, day) AS vms, arg_max(capped, day) AS capped
    FROM daily GROUP BY platform, site, environment
)
SELECT platform, site, environment, days::INTEGER AS days_of_history, vms::INTEGER AS vms,
       round(today_score, 2) AS readiness_score, round(today_credit, 2) AS drill_credit, capped,
       round(CASE WHEN days >= 3 THEN coalesce(slope, 0) * 7 ELSE 0 END, 2) AS change_per_week,
       CASE WHEN days >= 3 THEN 'least squares over ' || days || ' daily partitions'
            ELSE 'fewer than 3 days of history' END AS method,
       CASE WHEN days < 3 THEN 'unknown'
            WHEN slope * 7 < -1 THEN 'worsening' WHEN slope * 7 > 1 THEN 'improving' ELSE 'steady' END AS trend
FROM fit ORDER BY readiness_score, platform, site, environment
"""


def dr_trends(wh: Warehouse, day: date, window: int = WINDOW_DAYS) -> pa.Table:
    """One row per platform x site x environment with today's readiness score and its weekly change."""
    days = [d for d in wh.dates("dr_scores") if d <= day.isoformat()][-window:]
    files = [wh.file("dr_scores", d, p) for d in days for p in PLATFORMS if wh.exists("dr_scores", d, p)]
    if not files:
        raise FileNotFoundError(f"no dr_scores partitions in the {window} days up to {day}")
    con = sql.connect(2)
    if wh.local:
        con.read_parquet(files, union_by_name=True, filename=True, hive_partitioning=False).create_view("src")
    else:  # object stores: read through pyarrow's filesystem, keeping each row's file for its date
        parts = [wh.read("dr_scores", d, p) for d in days for p in PLATFORMS if wh.exists("dr_scores", d, p)]
        named = [t.append_column("filename", pa.array([f] * t.num_rows, pa.string())) for t, f in zip(parts, files, strict=True)]
        con.register("src", pa.concat_tables(named, promote_options="default"))
    have = {r[0] for r in con.execute("DESCRIBE src").fetchall()}
    if "readiness_score" not in have:
        raise ValueError(f"dr_scores up to {day} predate the readiness score: re-run those days (`qlrf run --date D`)")
    return sql.table(con, _QUERY)
