"""Compliance views: pass rate per control, the VMs failing one, and the waivers in force.

Pass rates are summed from compliance_controls (counted once per day from vm_compliance, keyed
by org, platform, site and environment) over the VMs in scope: vm_compliance records which controls a VM failed
and which were waived, not which applied, so a control that applies to prod only counts dev VMs as
passing. The page says so next to the chart.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from qlrf.scoring.compliance import Catalogue, Waiver
from qlrf.views.base import DRILL_LIMIT, Scope, counted, scan

SOON = timedelta(days=30)  # a waiver expiring within this is "expiring soon"


def control_rates(wh, scope: Scope, catalogue: Catalogue) -> pd.DataFrame:
    where, params = scope.where()
    counts = scan(wh, "compliance_controls", scope, f"""
        WITH scoped AS (SELECT control, failing_vms, waived_vms, vms FROM t WHERE {where}),
        marks AS (SELECT control, sum(failing_vms) AS failing, sum(waived_vms) AS waived FROM scoped
                  WHERE control IS NOT NULL GROUP BY control)
        SELECT c.control, coalesce(m.failing, 0)::BIGINT AS failing_vms, coalesce(m.waived, 0)::BIGINT AS waived_vms,
               (SELECT coalesce(sum(vms), 0) FROM scoped)::BIGINT AS vms
        FROM (SELECT unnest($controls::VARCHAR[]) AS control) c LEFT JOIN marks m USING (control)""",
        {**params, "controls": [c.id for c in catalogue.controls]})
    meta = pd.DataFrame([{"control": c.id, "title": c.title, "severity": c.severity} for c in catalogue.controls])
    frame = meta.merge(counts, on="control", how="left")
    frame["pass_rate"] = (100.0 * (1 - frame["failing_vms"] / frame["vms"].where(frame["vms"] > 0))).round(1)
    return frame[["control", "title", "severity", "pass_rate", "failing_vms", "waived_vms", "vms"]]


def failing_vms(wh, scope: Scope, control: str, limit: int = DRILL_LIMIT) -> tuple[pd.DataFrame, int]:
    """VMs failing `control` in scope (at most `limit`), and how many there are."""
    where, params = scope.where()
    where += " AND list_contains(failed_controls, $control)"
    frame = scan(wh, "vm_compliance", scope, f"""
        SELECT asset_id, platform, account, site, environment, owner, array_to_string(failed_controls, ', ') AS failed_controls,
               {counted(where)} AS total
        FROM t WHERE {where}
        ORDER BY site, environment, asset_id LIMIT $limit""", {**params, "control": control, "limit": limit})
    total = int(frame["total"].iloc[0]) if len(frame) else 0
    return frame.drop(columns="total"), total


def waiver_table(waivers: list[Waiver], on: date) -> pd.DataFrame:
    """Every waiver with its state on `on`: expired, expiring soon (within SOON) or active."""
    rows = []
    for w in waivers:
        left = (w.expires - on).days
        state = "expired" if left < 0 else ("expiring soon" if left <= SOON.days else "active")
        match = ", ".join(f"{k}={v}" for k, v in w.match.model_dump(exclude_none=True).items())
        rows.append({"waiver": w.id, "control": w.control, "owner": w.owner, "expires": w.expires.isoformat(),
                     "days_left": left, "state": state, "match": match, "reason": w.reason})
    columns = ["waiver", "control", "owner", "expires", "days_left", "state", "match", "reason"]
    return pd.DataFrame(rows, columns=columns).sort_values(["days_left", "waiver"]).reset_index(drop=True)
