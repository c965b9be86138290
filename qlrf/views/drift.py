"""Drift views: where VMs are behind their golden image, how far, and where it is heading.

Aggregates come from the small drift_scores roll-ups and the drift_breakdown page table (VMs per
image version and status, qlrf.scoring.page_tables); only drill-downs touch the per-VM vm_drift
table, filtered and limited in SQL.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from qlrf.views.base import DRILL_LIMIT, Scope, counted, scan, scan_history, weighted
from qlrf.warehouse import Warehouse


def heatmap(wh: Warehouse, scope: Scope) -> pd.DataFrame:
    """Site x environment: VM-weighted drift score, share on current image and revoked VMs."""
    where, params = scope.where()
    return scan(wh, "drift_scores", scope, f"""
        SELECT site, environment, sum(vms)::BIGINT AS vms, {weighted('drift_score')} AS drift_score,
               round(100.0 * sum(on_current) / nullif(sum(vms), 0), 1) AS pct_current, sum(revoked)::BIGINT AS revoked
        FROM t WHERE {where} GROUP BY site, environment ORDER BY site, environment""", params)


def versions_behind(wh: Warehouse, scope: Scope) -> pd.DataFrame:
    """How many VMs are 0, 1, 2... versions behind, by status (revoked/unknown have no distance)."""
    where, params = scope.where()
    return scan(wh, "drift_breakdown", scope, f"""
        SELECT CASE WHEN status IN ('current', 'behind') THEN CAST(versions_behind AS VARCHAR) ELSE status END AS versions_behind,
               status, sum(vms)::BIGINT AS vms
        FROM t WHERE {where} GROUP BY ALL ORDER BY min(coalesce(versions_behind, 999)), status""", params)


def revoked_exposure(wh: Warehouse, scope: Scope) -> pd.DataFrame:
    """VMs on revoked images, by image and reason, worst first."""
    where, params = scope.where()
    return scan(wh, "drift_breakdown", scope, f"""
        SELECT family, image_version, revoked_reason, sum(vms)::BIGINT AS vms,
               count(DISTINCT site)::BIGINT AS sites, string_agg(DISTINCT environment, ', ' ORDER BY environment) AS environments
        FROM t WHERE {where} AND status = 'revoked' GROUP BY ALL ORDER BY vms DESC, family, image_version""", params)


def trend(wh: Warehouse, scope: Scope, days: int = 30) -> pd.DataFrame:
    """Daily VM-weighted drift score per site (history of drift_scores) within the filters."""
    where, params = scope.where()
    return scan_history(wh, "drift_scores", scope.day, days, f"""
        SELECT date, site, {weighted('drift_score')} AS drift_score FROM t WHERE {where} GROUP BY date, site ORDER BY date, site""",
        params, platforms=scope.platforms, orgs=scope.orgs)


def forecasts(wh: Warehouse, scope: Scope, thresholds: dict[str, float]) -> pd.DataFrame:
    """The drift_trends forecast per site x environment against that environment's plan threshold."""
    where, params = scope.where(("site", "environment"))
    frame = scan(wh, "drift_trends", scope, f"""
        SELECT site, environment, days_of_history, vms, drift_score, change_per_week, forecast_next_week, trend, method
        FROM t WHERE {where} ORDER BY forecast_next_week DESC, site, environment""", params, daily=True)
    frame["threshold"] = frame["environment"].map(thresholds)
    frame["crosses_threshold"] = frame["forecast_next_week"] > frame["threshold"]
    return frame


def drilldown(wh: Warehouse, scope: Scope, site: str, environment: str, limit: int = DRILL_LIMIT) -> tuple[pd.DataFrame, int]:
    """The VMs of one heatmap cell, furthest behind first, at most `limit` rows; and how many there are."""
    cell = replace(scope, site=site, environment=environment)  # keeps the platform and the caller's orgs
    where, params = cell.where()
    frame = scan(wh, "vm_drift", cell, f"""
        SELECT asset_id, platform, account, region, owner, state, image_ref, family, image_version, current_version,
               versions_behind, days_behind, status, severity, {counted(where)} AS total
        FROM t WHERE {where}
        ORDER BY CASE status WHEN 'revoked' THEN 0 WHEN 'unknown' THEN 1 WHEN 'unmanaged' THEN 2 ELSE 3 END,
                 versions_behind DESC NULLS LAST, days_behind DESC NULLS LAST, asset_id
        LIMIT $limit""", {**params, "limit": limit})
    total = int(frame["total"].iloc[0]) if len(frame) else 0
    return frame.drop(columns="total"), total
