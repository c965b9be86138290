"""One site at a time: its platforms and environments with the three scores, and its history."""

from __future__ import annotations

from collections.abc import Collection

import pandas as pd

from qlrf.views.base import Scope, scan, scan_history, weighted


def site_names(wh, day: str, orgs: Collection[str] | None = None) -> list[str]:
    """Sites of the day, most drifted first (fleet_sites order); with `orgs`, only sites where those
    organisations have VMs, ranked by their VMs' drift."""
    if orgs is not None:
        frame = scan(wh, "drift_scores", Scope(day, orgs=tuple(orgs)),
                     f"SELECT site FROM t GROUP BY site ORDER BY {weighted('drift_score')} DESC, site")
        return list(frame["site"])
    frame = scan(wh, "fleet_sites", Scope(day), "SELECT site FROM t ORDER BY drift_score DESC, site", daily=True)
    return list(frame["site"])


def scores(wh, scope: Scope) -> pd.DataFrame:
    """Platform x environment rows of one site with drift, compliance and DR side by side."""
    where, params = scope.where()
    drift = scan(wh, "drift_scores", scope, f"SELECT platform, environment, vms, drift_score, pct_current, revoked FROM t WHERE {where}", params)
    comp = scan(wh, "compliance_scores", scope,
                f"SELECT platform, environment, compliance_score, non_compliant_vms FROM t WHERE {where}", params)
    dr = scan(wh, "dr_scores", scope, f"SELECT platform, environment, dr_readiness, rpo_breaches FROM t WHERE {where}", params)
    frame = drift.merge(comp, on=["platform", "environment"], how="left").merge(dr, on=["platform", "environment"], how="left")
    return frame.sort_values(["platform", "environment"]).reset_index(drop=True)


def history(wh, scope: Scope, days: int = 30) -> pd.DataFrame:
    """Daily drift score of the site per environment."""
    where, params = scope.where()
    return scan_history(wh, "drift_scores", scope.day, days, f"""
        SELECT date, environment, {weighted('drift_score')} AS drift_score FROM t WHERE {where}
        GROUP BY date, environment ORDER BY date, environment""", params, platforms=scope.platforms, orgs=scope.orgs)
