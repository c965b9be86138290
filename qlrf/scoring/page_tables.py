"""Per-page breakdowns: small tables counted once per day x platform from the per-VM tables.

Why: the Control Tower's distributions (versions behind, revoked exposure, image usage, control pass
rates, restore-point age bands, DR gaps) were counted from the per-VM tables on every first visit,
which grows with the fleet (a million VMs: seconds per page). Counting them once when the per-VM
table is written costs ~0.1 s per table and leaves the pages a few hundred rows to sum, whatever
the fleet size. Each row is keyed by ``org`` as well as platform, site and environment, so the
dashboard's filters, and a reader restricted to some organisations, are a cheap WHERE over it;
summing the rows that match a filter gives exactly what counting the per-VM rows would.

Data flows one way: vm_drift / vm_compliance / vm_dr -> these tables -> qlrf.views -> pages.
Drill-downs to individual VMs still read the per-VM tables, with filters and limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from qlrf import sql
from qlrf.quality import PartitionRejected
from qlrf.scoring.drift import WEIGHT_SQL
from qlrf.tenancy import model as tenancy
from qlrf.warehouse import Warehouse

KEYS = "org, platform, site, environment"

# Restore-point age as a share of the VM's RPO objective (the DR page's bands, in this order).
AGE_BANDS = ("within half the RPO", "within the RPO", "up to 2x the RPO", "over 2x the RPO", "no restore point")
AGE_BAND_SQL = f"""CASE WHEN last_snapshot_at IS NULL THEN '{AGE_BANDS[4]}'
     WHEN snapshot_age_hours <= rpo_hours / 2.0 THEN '{AGE_BANDS[0]}'
     WHEN snapshot_age_hours <= rpo_hours THEN '{AGE_BANDS[1]}'
     WHEN snapshot_age_hours <= rpo_hours * 2.0 THEN '{AGE_BANDS[2]}'
     ELSE '{AGE_BANDS[3]}' END"""

# VMs per image version and status (versions behind, revoked exposure, image usage, drill-down totals).
DRIFT_BREAKDOWN = f"""
SELECT {KEYS}, family, image_version, status, versions_behind, coalesce(revoked_reason, '') AS revoked_reason,
       severity, count(*)::BIGINT AS vms
FROM vm_drift GROUP BY ALL ORDER BY ALL
"""

# Per control: VMs failing it and VMs with it waived; one row per group with control NULL carries the
# group's VM count (a control nobody fails still needs the denominator) and its compliance weights.
COMPLIANCE_CONTROLS = f"""
WITH marks AS (
    SELECT {KEYS}, unnest(failed_controls) AS control, 1 AS failing, 0 AS waived FROM vm_compliance
    UNION ALL
    SELECT {KEYS}, unnest(waived_controls) AS control, 0 AS failing, 1 AS waived FROM vm_compliance
)
SELECT {KEYS}, control, sum(failing)::BIGINT AS failing_vms, sum(waived)::BIGINT AS waived_vms, 0::BIGINT AS vms,
       0::DOUBLE AS weight_passed, 0::DOUBLE AS weight_applicable
FROM marks GROUP BY ALL
UNION ALL
SELECT {KEYS}, NULL::VARCHAR AS control, 0::BIGINT, 0::BIGINT, count(*)::BIGINT,
       sum(weight_passed)::DOUBLE, sum(weight_applicable)::DOUBLE FROM vm_compliance GROUP BY ALL
ORDER BY ALL
"""

# VMs per region, RPO objective, restore-point age band, readiness gap and drill-evidence gap.
DR_BREAKDOWN = f"""
SELECT {KEYS}, region, rpo_hours, {AGE_BAND_SQL} AS band, ready, gap, drill_gap, count(*)::BIGINT AS vms
FROM vm_dr GROUP BY ALL ORDER BY ALL
"""


# The fleet report's platform rows (qlrf.scoring.report) from the page tables: over relations d (drift_breakdown
# summed per platform with grouping sets), c (compliance_controls group rows) and r (dr_breakdown), already
# restricted to a reader's organisations. Same sums and the same final rounding in SQL, so a restricted
# Overview matches the report recomputed from the per-VM rows without reading them.
HEADLINE_PARTS = {
    "drift_breakdown": f"""
        SELECT platform, sum(vms)::BIGINT AS vms, coalesce(sum(vms) FILTER (WHERE status = 'current'), 0)::BIGINT AS cur,
               coalesce(sum(vms) FILTER (WHERE status = 'revoked'), 0)::BIGINT AS revoked,
               sum(({WEIGHT_SQL}) * vms)::BIGINT AS weight
        FROM t GROUP BY GROUPING SETS ((platform), ())""",
    "compliance_controls": """
        SELECT platform, sum(weight_passed) AS passed, sum(weight_applicable) AS applicable
        FROM t WHERE control IS NULL GROUP BY GROUPING SETS ((platform), ())""",
    "dr_breakdown": """
        SELECT platform, coalesce(sum(vms) FILTER (WHERE ready), 0)::BIGINT AS ready, sum(vms)::BIGINT AS vms
        FROM t GROUP BY GROUPING SETS ((platform), ())""",
}
HEADLINE_SQL = """
SELECT coalesce(d.platform, 'all') AS platform, d.vms::INTEGER AS vms,
       round(100.0 * d.cur / d.vms, 1) AS pct_current_golden, d.revoked::INTEGER AS on_revoked_image,
       round(d.weight / d.vms, 1) AS drift_score, round(100 * (c.passed / nullif(c.applicable, 0)), 1) AS compliance_score,
       round(100 * (r.ready / r.vms), 1) AS dr_readiness
FROM d LEFT JOIN c ON c.platform IS NOT DISTINCT FROM d.platform
       LEFT JOIN r ON r.platform IS NOT DISTINCT FROM d.platform
WHERE d.vms > 0
ORDER BY d.platform IS NULL, d.platform
"""


def headline_rows(parts: dict[str, pa.Table]) -> pa.Table:
    """The report's platform rows (and `all`) from the three HEADLINE_PARTS results."""
    with sql.session() as con:
        for name, alias in (("drift_breakdown", "d"), ("compliance_controls", "c"), ("dr_breakdown", "r")):
            sql.relation(con, alias, parts[name])
        return sql.table(con, HEADLINE_SQL)


@dataclass(frozen=True)
class PageTable:
    name: str
    source: str  # the per-VM table it counts
    query: str  # over a relation named like `source`


PAGE_TABLES = (
    PageTable("drift_breakdown", "vm_drift", DRIFT_BREAKDOWN),
    PageTable("compliance_controls", "vm_compliance", COMPLIANCE_CONTROLS),
    PageTable("dr_breakdown", "vm_dr", DR_BREAKDOWN),
)
BY_NAME = {t.name: t for t in PAGE_TABLES}
BY_SOURCE = {t.source: t for t in PAGE_TABLES}


def breakdown(table: PageTable, per_vm: pa.Table | str, con=None) -> pa.Table:
    """`table` counted from `per_vm` (an Arrow table or a Parquet path of its source), ``org`` filled
    for partitions written before tenancy (the same resolution the readers apply)."""
    con = con or sql.session()
    tenancy.relation(con, table.source, per_vm)
    return sql.table(con, table.query)


def run_page_table(wh: Warehouse, name: str, day: date | str, platform: str) -> tuple[pa.Table, str]:
    """Count one page table from the day x platform per-VM partition and write it; (table, path).

    Checked before it replaces anything: its counts must add up to the per-VM partition's rows, or
    PartitionRejected and the previous page table stays in force."""
    table = BY_NAME[name]
    counted = breakdown(table, wh.source(table.source, day, platform), sql.session())
    vms, expected = sum(counted["vms"].to_pylist()), wh.num_rows(table.source, day, platform)
    if vms != expected:
        raise PartitionRejected(name, f"{day}/{platform}", [f"counts {vms} VMs, {table.source} holds {expected}"])
    return counted, wh.write(name, counted, day, platform)


def run_page_tables(wh: Warehouse, day: date | str, platform: str) -> dict[str, tuple[pa.Table, str]]:
    """Every page table of one day x platform (what the bench and `qlrf score` call; the assets call one each)."""
    return {t.name: run_page_table(wh, t.name, day, platform) for t in PAGE_TABLES}


__all__ = ["AGE_BANDS", "BY_NAME", "BY_SOURCE", "HEADLINE_PARTS", "PAGE_TABLES", "PageTable", "breakdown", "headline_rows",
           "run_page_table", "run_page_tables"]
