"""DR views: readiness by site and how old the newest restore point is against each objective.

Drills with measured RTO/RPO and failover what-ifs are not recorded yet (they arrive with the DR
drill work); these views only read what the pipeline measures today.
"""

from __future__ import annotations

import pandas as pd

from qlrf.views.base import DRILL_LIMIT, Scope, scan, weighted

# Restore-point age as a share of the VM's RPO objective.
AGE_BANDS = ("within half the RPO", "within the RPO", "up to 2x the RPO", "over 2x the RPO", "no restore point")


def readiness_by_site(wh, scope: Scope) -> pd.DataFrame:
    where, params = scope.where()
    return scan(wh, "dr_scores", scope, f"""
        SELECT site, environment, sum(vms)::BIGINT AS vms, sum(ready_vms)::BIGINT AS ready_vms,
               round(100.0 * sum(ready_vms) / nullif(sum(vms), 0), 1) AS dr_readiness,
               sum(rpo_breaches)::BIGINT AS rpo_breaches, {weighted('p95_snapshot_age_hours')} AS p95_snapshot_age_hours
        FROM t WHERE {where} GROUP BY site, environment ORDER BY dr_readiness, site, environment""", params)


def rpo_age_bands(wh, scope: Scope) -> pd.DataFrame:
    """VMs per environment (with its RPO objective in hours) in each restore-point age band."""
    where, params = scope.where()
    return scan(wh, "vm_dr", scope, f"""
        SELECT environment, any_value(rpo_hours)::INTEGER AS rpo_hours,
               CASE WHEN last_snapshot_at IS NULL THEN '{AGE_BANDS[4]}'
                    WHEN snapshot_age_hours <= rpo_hours / 2.0 THEN '{AGE_BANDS[0]}'
                    WHEN snapshot_age_hours <= rpo_hours THEN '{AGE_BANDS[1]}'
                    WHEN snapshot_age_hours <= rpo_hours * 2.0 THEN '{AGE_BANDS[2]}'
                    ELSE '{AGE_BANDS[3]}' END AS band,
               count(*)::BIGINT AS vms
        FROM t WHERE {where} GROUP BY environment, band ORDER BY environment, band""", params)


def gaps(wh, scope: Scope) -> pd.DataFrame:
    where, params = scope.where()
    return scan(wh, "vm_dr", scope, f"""
        SELECT gap, count(*)::BIGINT AS vms, count(DISTINCT site)::BIGINT AS sites FROM t
        WHERE {where} AND gap IS NOT NULL GROUP BY gap ORDER BY vms DESC""", params)


def not_ready(wh, scope: Scope, limit: int = DRILL_LIMIT) -> tuple[pd.DataFrame, int]:
    where, params = scope.where()
    frame = scan(wh, "vm_dr", scope, f"""
        SELECT asset_id, platform, site, environment, state, snapshot_age_hours, rpo_hours, gap, count(*) OVER () AS total
        FROM t WHERE {where} AND NOT ready ORDER BY snapshot_age_hours DESC NULLS FIRST, asset_id LIMIT $limit""",
        {**params, "limit": limit})
    total = int(frame["total"].iloc[0]) if len(frame) else 0
    return frame.drop(columns="total"), total
