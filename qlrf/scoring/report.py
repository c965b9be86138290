"""The fleet report: per-platform and fleet-wide answers to the product's four questions.

Computed from the per-VM tables (not by averaging averages), so the fleet-wide compliance score is
the true severity-weighted pass rate.
"""

from __future__ import annotations

from collections.abc import Collection
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


def _orgs_query(weight_sql: str) -> str:
    """Per organisation and project: the same four answers as the platform summary."""
    return f"""
WITH d AS (SELECT org, project, count(*) AS vms, count(*) FILTER (WHERE status = 'current') AS cur,
                  count(*) FILTER (WHERE status = 'revoked') AS revoked, avg({weight_sql}) AS drift
           FROM vm_drift GROUP BY org, project),
c AS (SELECT org, project, sum(weight_passed) / nullif(sum(weight_applicable), 0) AS score
      FROM vm_compliance GROUP BY org, project),
r AS (SELECT org, project, avg(ready::INT) AS ready FROM vm_dr GROUP BY org, project)
SELECT d.org, d.project, d.vms::INTEGER AS vms, round(100.0 * d.cur / d.vms, 1) AS pct_current_golden,
       d.revoked::INTEGER AS on_revoked_image, round(d.drift, 1) AS drift_score,
       round(100 * c.score, 1) AS compliance_score, round(100 * r.ready, 1) AS dr_readiness
FROM d LEFT JOIN c USING (org, project) LEFT JOIN r USING (org, project)
ORDER BY d.org, d.project
"""


def _connect_per_vm(wh: Warehouse, day: date | str, platforms: tuple[str, ...], orgs: Collection[str] | None):
    """A connection with vm_drift, vm_compliance and vm_dr registered, org/project filled (pre-1.1 rows
    from the tenancy mapping) and, with `orgs`, only those organisations' rows."""
    # DuckDB only to build the report: printing it (`qlrf report`) reads two small files
    import pyarrow as pa

    from qlrf import sql
    from qlrf.tenancy import model as tenancy

    con = sql.connect()
    mapping = tenancy.current()
    sql.relation(con, "report_orgs", pa.table({"org": pa.array(sorted(orgs or ()), pa.string())}))
    for name in ("vm_drift", "vm_compliance", "vm_dr"):
        tenancy.relation(con, f"{name}_all", wh.read_platforms(name, day, platforms), mapping)
        keep = "true" if orgs is None else "org IN (SELECT org FROM report_orgs)"
        con.register(name, con.sql(f"SELECT * FROM {name}_all WHERE {keep}"))
    return con


def fleet_tables(wh: Warehouse, day: date | str, platforms: tuple[str, ...] = PLATFORMS,
                 orgs: Collection[str] | None = None) -> tuple[pa.Table, pa.Table]:
    """(per-platform summary with an 'all' row, per-site drift ranking) for one day; with `orgs`, over
    those organisations' VMs only (None = the whole fleet, system use)."""
    from qlrf import sql
    from qlrf.scoring.drift import WEIGHT_SQL

    con = _connect_per_vm(wh, day, platforms, orgs)
    return sql.table(con, _platform_query(WEIGHT_SQL)), sql.table(con, _sites_query(WEIGHT_SQL))


def org_table(wh: Warehouse, day: date | str, orgs: Collection[str] | None = None,
              platforms: tuple[str, ...] = PLATFORMS) -> pa.Table:
    """One row per (organisation, project) present that day: VMs, % golden, revoked, drift, compliance, DR."""
    from qlrf import sql
    from qlrf.scoring.drift import WEIGHT_SQL

    present = tuple(p for p in platforms if wh.exists("vm_drift", day, p))
    if not present:
        raise PartitionMissing(f"no vm_drift partition for {day} in {wh.root}; run `qlrf run --date {day}` first")
    return sql.table(_connect_per_vm(wh, day, present, orgs), _orgs_query(WEIGHT_SQL))


def render_orgs(rows: list[dict]) -> list[str]:
    lines = ["", "By organisation:"]
    header = f"  {'organisation':<14}{'project':<14}{'VMs':>8}{'% golden':>10}{'revoked':>9}{'drift':>7}{'compliance':>12}{'DR ready':>10}"
    lines += [header, "  " + "-" * (len(header) - 2)]
    for r in rows:
        comp = "-" if r["compliance_score"] is None else f"{r['compliance_score']:.1f}%"
        ready = "-" if r["dr_readiness"] is None else f"{r['dr_readiness']:.1f}%"
        lines.append(f"  {r['org']:<14}{r['project']:<14}{r['vms']:>8}{r['pct_current_golden']:>9.1f}%"
                     f"{r['on_revoked_image']:>9}{r['drift_score']:>7.1f}{comp:>12}{ready:>10}")
    if not rows:
        lines.append("  (no VMs in the organisations you may read)")
    return lines


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


def report_text(wh: Warehouse, day: date | str, orgs: Collection[str] | None = None) -> str:
    """The report as materialised by the fleet_report asset (what the dashboard shows too), with a
    "By organisation" section. With `orgs` (a caller's readable organisations), every number is
    recomputed from those organisations' per-VM rows, and the fleet-wide DR roll-up is left out."""
    if not wh.exists("fleet_report", day):
        raise PartitionMissing(f"no fleet report for {day} in {wh.root}; run `qlrf run --date {day}` first")
    from qlrf.scoring.dr_report import dr_section

    if orgs is None:
        summary = wh.read("fleet_report", day).to_pylist()
        sites = wh.read("fleet_sites", day).to_pylist()
        extra = dr_section(wh, day)
    else:
        present = tuple(fleet_tables_present(wh, day))
        summary_t, sites_t = fleet_tables(wh, day, present, orgs)
        summary = [r for r in summary_t.to_pylist() if r["vms"]]
        sites = sites_t.to_pylist()
        who = ", ".join(sorted(orgs)) or "no organisation"
        extra = ["", f"Scoped to {who}: fleet-wide roll-ups (the DR section) are not shown."]
    by_org = render_orgs(org_table(wh, day, orgs).to_pylist())
    text = render(day, summary, sites, shown(wh.root))
    head, _, tail = text.rpartition("\n\nResults: ")
    return "\n".join([head, *by_org, *extra, "", f"Results: {tail}"])
