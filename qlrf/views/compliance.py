"""Compliance views: pass rate per control, the VMs failing one, and the waivers in force.

Pass rates are counted over the VMs in scope: vm_compliance records which controls a VM failed
and which were waived, not which applied, so a control that applies to prod only counts dev VMs as
passing. The page says so next to the chart.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from qlrf.scoring.compliance import Catalogue, Waiver
from qlrf.views.base import DRILL_LIMIT, Scope, scan

SOON = timedelta(days=30)  # a waiver expiring within this is "expiring soon"


def control_rates(wh, scope: Scope, catalogue: Catalogue) -> pd.DataFrame:
    where, params = scope.where()
    counts = scan(wh, "vm_compliance", scope, f"""
        WITH scoped AS (SELECT failed_controls, waived_controls FROM t WHERE {where}),
        failed AS (SELECT unnest(failed_controls) AS control FROM scoped),
        waived AS (SELECT unnest(waived_controls) AS control FROM scoped)
        SELECT c.control, coalesce(f.n, 0)::BIGINT AS failing_vms, coalesce(w.n, 0)::BIGINT AS waived_vms,
               (SELECT count(*) FROM scoped)::BIGINT AS vms
        FROM (SELECT unnest($controls::VARCHAR[]) AS control) c
        LEFT JOIN (SELECT control, count(*) AS n FROM failed GROUP BY control) f USING (control)
        LEFT JOIN (SELECT control, count(*) AS n FROM waived GROUP BY control) w USING (control)""",
        {**params, "controls": [c.id for c in catalogue.controls]})
    meta = pd.DataFrame([{"control": c.id, "title": c.title, "severity": c.severity} for c in catalogue.controls])
    frame = meta.merge(counts, on="control", how="left")
    frame["pass_rate"] = (100.0 * (1 - frame["failing_vms"] / frame["vms"].where(frame["vms"] > 0))).round(1)
    return frame[["control", "title", "severity", "pass_rate", "failing_vms", "waived_vms", "vms"]]


def failing_vms(wh, scope: Scope, control: str, limit: int = DRILL_LIMIT) -> tuple[pd.DataFrame, int]:
    """VMs failing `control` in scope (at most `limit`), and how many there are."""
    where, params = scope.where()
    frame = scan(wh, "vm_compliance", scope, f"""
        SELECT asset_id, platform, account, site, environment, owner, array_to_string(failed_controls, ', ') AS failed_controls,
               count(*) OVER () AS total
        FROM t WHERE {where} AND list_contains(failed_controls, $control)
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
