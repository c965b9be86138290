"""The four headline numbers, their day-over-day change and 30 days of history.

Why deltas against the previous *available* day: the daily run can skip a day (holiday, outage);
comparing with "yesterday" would then show no delta at all instead of the change since last run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

from qlrf.views.base import DataProblem, Scope, partition_files, scan, scan_history
from qlrf.warehouse import Warehouse

HEADLINES = {
    "pct_current_golden": ("On current golden image", "%", "Share of VMs running the newest approved image of their family."),
    "compliance_score": ("Compliance score", "%", "Severity-weighted share of applicable controls passed (waived count as passed)."),
    "dr_readiness": ("DR readiness", "%", "Share of VMs with a snapshot inside their RPO objective and a rebuildable image."),
    "drift_score": ("Drift score", "/100", "Severity-weighted, 0 = every VM on its current golden image, 100 = every VM critical (revoked or far behind)."),
}
TREND_DAYS = 30


@dataclass(frozen=True)
class Headline:
    key: str
    label: str
    unit: str
    explanation: str
    value: float
    delta: float | None  # change since `previous_day`


def _scoped_rows(wh: Warehouse, day: str, orgs: tuple[str, ...]) -> list[dict]:
    """fleet_report's rows for one day over `orgs`' VMs only: summed from the page tables (keyed by org,
    a few hundred rows) when the day has them for every platform it scored, else recomputed from the
    per-VM tables with the report's own query (seconds for a million VMs)."""
    from qlrf.scoring.page_tables import HEADLINE_PARTS, headline_rows
    from qlrf.scoring.report import fleet_tables, fleet_tables_present

    present = tuple(fleet_tables_present(wh, day))
    if not present:
        return []
    if all(not partition_files(wh, table, day, present)[1] for table in HEADLINE_PARTS):
        scope = Scope(day, orgs=orgs)
        parts = {table: pa.Table.from_pandas(scan(wh, table, scope, query), preserve_index=False)
                 for table, query in HEADLINE_PARTS.items()}
        return headline_rows(parts).to_pylist()
    summary, _ = fleet_tables(wh, day, present, orgs)
    return [r for r in summary.to_pylist() if r["vms"]]


def fleet_row(wh: Warehouse, scope: Scope) -> pd.DataFrame:
    """The fleet_report rows of the day: one per platform plus `all` (for a restricted scope, over its
    organisations' VMs only)."""
    if scope.orgs is not None:
        rows = _scoped_rows(wh, scope.day, scope.orgs)
        if not rows:
            raise DataProblem(f"No VMs of {', '.join(scope.orgs) or 'no organisation'} on {scope.day}.")
        return pd.DataFrame(rows)
    return scan(wh, "fleet_report", scope, "SELECT * EXCLUDE (filename) FROM t", daily=True)


def history(wh: Warehouse, day: str, platform: str | None = None, days: int = TREND_DAYS,
            orgs: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per day (the platform's row, or `all`): the headline numbers over the last `days` days.
    With `orgs`, each day is recomputed from those organisations' per-VM rows."""
    if orgs is not None:
        rows = []
        for d in [d for d in wh.dates("vm_drift") if d <= day][-days:]:
            rows += [{"date": pd.Timestamp(d), **r} for r in _scoped_rows(wh, d, orgs) if r["platform"] == (platform or "all")]
        columns = ["date", "vms", "pct_current_golden", "compliance_score", "dr_readiness", "drift_score", "on_revoked_image"]
        return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    return scan_history(
        wh, "fleet_report", day, days,
        "SELECT date, vms, pct_current_golden, compliance_score, dr_readiness, drift_score, on_revoked_image "
        "FROM t WHERE platform = $p ORDER BY date", {"p": platform or "all"},
    )


def headlines(wh: Warehouse, scope: Scope) -> tuple[int, int | None, list[Headline], str | None]:
    """(VMs, their change, the four headline numbers with deltas, the day compared with or None)."""
    rows = history(wh, scope.day, scope.platform, days=TREND_DAYS, orgs=scope.orgs)
    if rows.empty or str(rows["date"].iloc[-1])[:10] != scope.day:
        which = f"{scope.day}" + (f" ({scope.platform})" if scope.platform else "")
        raise DataProblem(f"No fleet_report row for {which}: produce it with `qlrf run --date {scope.day}` (or `make run` for today).")
    now = rows.iloc[-1]
    before = rows.iloc[-2] if len(rows) > 1 else None
    items = [
        Headline(key, label, unit, why, float(now[key]), None if before is None else round(float(now[key]) - float(before[key]), 2))
        for key, (label, unit, why) in HEADLINES.items()
    ]
    vms_delta = None if before is None else int(now["vms"]) - int(before["vms"])
    return int(now["vms"]), vms_delta, items, (None if before is None else str(before["date"])[:10])
