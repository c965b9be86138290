"""The fleet report: per-platform and fleet-wide answers to the product's four questions.

Computed from the per-VM tables (not by averaging averages), so the fleet-wide compliance score is
the true severity-weighted pass rate.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from qlrf.inventory.contract import PLATFORMS
from qlrf.settings import shown
from qlrf.warehouse import PartitionMissing, Warehouse

if TYPE_CHECKING:
    import pyarrow as pa


def _platform_query(weight_sql: str) -> str:
    return f"""
WITH d AS (SELECT platform, count(*) AS vms, count(*) FILTER (WHERE status = 'current') AS cur,
                  count(*) FILTER (WHERE status = 'revoked') AS revoked,
                  avg({weight_sql}) AS drift
           FROM vm_drift GROUP BY GROUPING SETS ((platform), ())),
c AS (SELECT platform, sum(weight_passed) / nullif(sum(weight_applicable), 0) AS score
      FROM vm_compliance GROUP BY GROUPING SETS ((platform), ())),
r AS (SELECT platform, avg(ready::INT) AS ready FROM vm_dr GROUP BY GROUPING SETS ((platform), ()))
SELECT coalesce(d.platform, 'all') AS platform, d.vms::INTEGER AS vms,
       round(100.0 * d.cur / d.vms, 1) AS pct_current_golden, d.revoked::INTEGER AS on_revoked_image,
       round(d.drift, 1) AS drift_score, round(100 * c.score, 1) AS compliance_score,
       round(100 * r.ready, 1) AS dr_readiness
FROM d LEFT JOIN c ON c.platform IS NOT DISTINCT FROM d.platform
       LEFT JOIN r ON r.platform IS NOT DISTINCT FROM d.platform
ORDER BY d.platform IS NULL, d.platform
"""


def _sites_query(weight_sql: str) -> str:
    return f"""
SELECT site, count(*)::INTEGER AS vms, string_agg(DISTINCT platform, ',' ORDER BY platform) AS platforms,
       round(avg({weight_sql}), 1) AS drift_score,
       round(100.0 * count(*) FILTER (WHERE status = 'current') / count(*), 1) AS pct_current_golden,
       count(*) FILTER (WHERE status = 'revoked')::INTEGER AS on_revoked_image
FROM vm_drift GROUP BY site ORDER BY drift_score DESC, site
"""


def fleet_tables(wh: Warehouse, day: date | str, platforms: tuple[str, ...] = PLATFORMS) -> tuple[pa.Table, pa.Table]:
    """(per-platform summary with an 'all' row, per-site drift ranking) for one day."""
    # DuckDB only to build the report: printing it (`qlrf report`) reads two small files
    from qlrf import sql
    from qlrf.scoring.drift import WEIGHT_SQL

    con = sql.connect()
    for name in ("vm_drift", "vm_compliance", "vm_dr"):
        con.register(name, wh.read_platforms(name, day, platforms))
    return sql.table(con, _platform_query(WEIGHT_SQL)), sql.table(con, _sites_query(WEIGHT_SQL))


def render(day: date | str, summary: list[dict], sites: list[dict], where: str, top: int = 5) -> str:
    lines = [f"Resilience Fabric fleet report for {day}", ""]
    header = f"{'platform':<9}{'VMs':>8}{'% golden':>10}{'revoked':>9}{'drift':>7}{'compliance':>12}{'DR ready':>10}"
    lines += [header, "-" * len(header)]
    for row in summary:
        lines.append(
            f"{row['platform']:<9}{row['vms']:>8}{row['pct_current_golden']:>9.1f}%{row['on_revoked_image']:>9}"
            f"{row['drift_score']:>7.1f}{row['compliance_score']:>11.1f}%{row['dr_readiness']:>9.1f}%"
        )
    lines += ["", "Most drifted sites (drift score 0 = all on current golden, 100 = all critical):"]
    for row in sites[:top]:
        lines.append(
            f"  {row['site']:<11} drift {row['drift_score']:>5.1f}  {row['pct_current_golden']:>5.1f}% golden  "
            f"{row['on_revoked_image']:>4} on revoked images  {row['vms']:>6} VMs ({row['platforms']})"
        )
    lines += ["", f"Results: {where}"]
    return "\n".join(lines)


def fleet_tables_present(wh: Warehouse, day: date | str) -> list[str]:
    return [p for p in PLATFORMS if wh.exists("vm_drift", day, p)]


def report_text(wh: Warehouse, day: date | str) -> str:
    """The report as materialised by the fleet_report asset (what the dashboard shows too)."""
    if not wh.exists("fleet_report", day):
        raise PartitionMissing(f"no fleet report for {day} in {wh.root}; run `qlrf run --date {day}` first")
    summary = wh.read("fleet_report", day).to_pylist()
    sites = wh.read("fleet_sites", day).to_pylist()
    from qlrf.scoring.dr_report import dr_section

    text = render(day, summary, sites, shown(wh.root))
    head, _, tail = text.rpartition("\n\nResults: ")
    return "\n".join([head, *dr_section(wh, day), "", f"Results: {tail}"])
