"""The fleet report's DR section: readiness with drill credit per site, stale drills, gaps, scenarios.

Reads what the day's assets wrote (dr_scores, vm_dr and, when materialised, dr_failover_scenarios),
so the report and the dashboard say the same thing. The scenarios table is read by name: the report
never runs a simulation itself.
"""

from __future__ import annotations

from datetime import date

from qlrf import sql
from qlrf.inventory.contract import PLATFORMS
from qlrf.warehouse import Warehouse

_SITES = """
SELECT site, sum(vms)::INTEGER AS vms,
       round(sum(readiness_score * vms) / sum(vms), 1) AS readiness_score,
       round(100.0 * sum(ready_vms) / sum(vms), 1) AS dr_readiness,
       round(sum(drill_credit * vms) / sum(vms), 1) AS drill_credit,
       sum(drilled_vms)::INTEGER AS drilled, sum(stale_drill_vms)::INTEGER AS stale,
       sum(no_drill_vms)::INTEGER AS undrilled, sum(failed_drill_vms)::INTEGER AS failed,
       sum(rto_gaps)::INTEGER AS rto_gaps, bool_or(capped) AS capped
FROM dr_scores GROUP BY site ORDER BY readiness_score, site
"""

_GAPS = """
SELECT gap, count(*)::INTEGER AS vms FROM (
    SELECT gap FROM vm_dr WHERE gap IS NOT NULL UNION ALL SELECT drill_gap FROM vm_dr WHERE drill_gap IS NOT NULL)
GROUP BY gap ORDER BY vms DESC, gap
"""


def _register(con, wh: Warehouse, table: str, day: date | str, columns: list[str]) -> bool:
    present = [p for p in PLATFORMS if wh.exists(table, day, p)]
    if not present:
        return False
    tables = [wh.read(table, day, p, columns=columns) for p in present]
    import pyarrow as pa

    con.register(table, pa.concat_tables(tables, promote_options="default"))
    return True


def dr_section(wh: Warehouse, day: date | str, top: int = 6) -> list[str]:
    """Lines of the DR section; says plainly what is missing instead of failing the whole report."""
    con = sql.connect(2)
    lines = ["", "Disaster recovery (readiness score 0-100 = 40 RPO met + 30 rebuildable + 30 drill credit; "
             "credit full for 30 days after a passed drill, 0 at 180; a failed drill caps the site at 50):"]
    try:
        has_scores = _register(con, wh, "dr_scores", day, ["site", "vms", "ready_vms", "readiness_score", "drill_credit",
                                                           "drilled_vms", "stale_drill_vms", "no_drill_vms",
                                                           "failed_drill_vms", "rto_gaps", "capped"])
        has_vms = _register(con, wh, "vm_dr", day, ["gap", "drill_gap"])
    except (KeyError, ValueError) as exc:  # older partitions without the drill columns
        return [*lines, f"  (DR scores for {day} predate drill evidence: re-run the day; {str(exc).splitlines()[0]})"]
    if not has_scores or not has_vms:
        return [*lines, f"  (no dr_scores for {day})"]
    sites = sql.table(con, _SITES).to_pylist()
    for r in sites[:top]:
        lines.append(f"  {r['site']:<11} score {r['readiness_score']:>5.1f}  ready {r['dr_readiness']:>5.1f}%  credit "
                     f"{r['drill_credit']:>5.1f}%  drilled {r['drilled']:>5}  stale {r['stale']:>5}  undrilled "
                     f"{r['undrilled']:>6}  failed {r['failed']:>4}  RTO gaps {r['rto_gaps']:>4}"
                     + ("  CAPPED" if r["capped"] else ""))
    stale = sum(r["stale"] for r in sites)
    undrilled = sum(r["undrilled"] for r in sites)
    lines.append(f"  Stale drills: {stale} VMs have a passed drill older than 30 days (credit decaying); "
                 f"{undrilled} VMs have no drill in 180 days.")
    gaps = sql.table(con, _GAPS).to_pylist()
    if gaps:
        lines.append("  Gaps: " + "; ".join(f"{g['gap']} {g['vms']}" for g in gaps))
    if wh.exists("dr_failover_scenarios", day):
        scenarios = wh.read("dr_failover_scenarios", day).to_pylist()
        lines.append("  Failover scenarios (policy/dr_targets.yaml; `qlrf dr simulate` for detail):")
        for s in scenarios:
            lines.append(f"    {s['scenario']:<16} {s['verdict'].upper():<9} {s['affected_vms']:>6} VMs, "
                         f"{s['groups_breached']}/{s['affected_groups']} groups breached, capacity "
                         f"{'fits' if s['capacity_fits'] else 'SHORT'} ({s['vcpu_needed']}/{s['vcpu_available']} vCPU), "
                         f"RTO unmeasured for {s['rto_unmeasured_vms']} VMs, {s['vms_over_rpo']} over RPO")
    else:
        lines.append(f"  Failover scenarios: not evaluated for {day} (materialise dr_failover_scenarios).")
    return lines


__all__ = ["dr_section"]
