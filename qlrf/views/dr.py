"""DR views: readiness by site and how old the newest restore point is against each objective.

Distributions (age bands, gaps, regions) are summed from the dr_breakdown page table
(qlrf.scoring.page_tables); only the list of VMs not ready reads vm_dr, filtered and limited.

Also the drill evidence (the dr_drills journal, readiness credit that decays, the gaps) and the
failover what-if (qlrf.dr.simulation) for a chosen site or region.
"""

from __future__ import annotations

import pandas as pd

from qlrf.views.base import DRILL_LIMIT, DataProblem, Scope, counted, scan, scan_history, weighted


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
    return scan(wh, "dr_breakdown", scope, f"""
        SELECT environment, any_value(rpo_hours)::INTEGER AS rpo_hours, band, sum(vms)::BIGINT AS vms
        FROM t WHERE {where} GROUP BY environment, band ORDER BY environment, band""", params)


def gaps(wh, scope: Scope) -> pd.DataFrame:
    where, params = scope.where()
    return scan(wh, "dr_breakdown", scope, f"""
        SELECT gap, sum(vms)::BIGINT AS vms, count(DISTINCT site)::BIGINT AS sites FROM t
        WHERE {where} AND gap IS NOT NULL GROUP BY gap ORDER BY vms DESC""", params)


def not_ready(wh, scope: Scope, limit: int = DRILL_LIMIT) -> tuple[pd.DataFrame, int]:
    where, params = scope.where()
    where += " AND NOT ready"
    frame = scan(wh, "vm_dr", scope, f"""
        SELECT asset_id, platform, site, environment, state, snapshot_age_hours, rpo_hours, gap, {counted(where)} AS total
        FROM t WHERE {where} ORDER BY snapshot_age_hours DESC NULLS FIRST, asset_id LIMIT $limit""",
        {**params, "limit": limit})
    total = int(frame["total"].iloc[0]) if len(frame) else 0
    return frame.drop(columns="total"), total


def readiness_with_drills(wh, scope: Scope) -> pd.DataFrame:
    """Per site x environment: the readiness score with decayed drill credit, drill coverage and caps."""
    where, params = scope.where()
    return scan(wh, "dr_scores", scope, f"""
        SELECT site, environment, sum(vms)::BIGINT AS vms, {weighted('readiness_score')} AS readiness_score,
               {weighted('drill_credit')} AS drill_credit, sum(drilled_vms)::BIGINT AS drilled_vms,
               sum(stale_drill_vms)::BIGINT AS stale_drill_vms, sum(no_drill_vms)::BIGINT AS no_drill_vms,
               sum(failed_drill_vms)::BIGINT AS failed_drill_vms, sum(rto_gaps)::BIGINT AS rto_gaps,
               bool_or(capped) AS capped, max(last_drill_at) AS last_drill_at
        FROM t WHERE {where} GROUP BY site, environment ORDER BY readiness_score, site, environment""", params)


def drill_gaps(wh, scope: Scope) -> pd.DataFrame:
    """VMs per drill-evidence gap (no drill, stale, failed, RTO above objective)."""
    where, params = scope.where()
    return scan(wh, "dr_breakdown", scope, f"""
        SELECT drill_gap, sum(vms)::BIGINT AS vms, count(DISTINCT site)::BIGINT AS sites FROM t
        WHERE {where} AND drill_gap IS NOT NULL GROUP BY drill_gap ORDER BY vms DESC""", params)


def readiness_history(wh, scope: Scope, days: int = 28) -> pd.DataFrame:
    """The readiness score per site over the last `days` partitions (drill credit decays day by day)."""
    where, params = scope.where()
    return scan_history(wh, "dr_scores", scope.day, days, f"""
        SELECT date, site, {weighted('readiness_score')} AS readiness_score FROM t WHERE {where}
        GROUP BY date, site ORDER BY date, site""", params, platforms=scope.platforms, orgs=scope.orgs)


def drills(wh, scope: Scope) -> pd.DataFrame:
    """Drills of the 180 days up to the scope's day, newest first, with RTO/RPO against their objectives."""
    from datetime import date

    from qlrf.dr.history import drill_summary

    if scope.orgs is not None:  # drill records span sites and groups, not organisations (yet)
        raise DataProblem("Drill history is kept fleet-wide, not per organisation: it is not shown to a reader "
                          f"restricted to {', '.join(scope.orgs) or 'no organisation'}.")
    frame = drill_summary(wh, date.fromisoformat(scope.day), site=scope.site, platform=scope.platform).to_pandas()
    if scope.environment and len(frame):
        frame = frame[frame["environment"].str.split(",").apply(lambda envs: scope.environment in envs)]
    return frame


def regions(wh, scope: Scope) -> list[str]:
    """Regions present in the day's vm_dr (what a region failover can be simulated for)."""
    frame = scan(wh, "dr_breakdown", scope, "SELECT DISTINCT region FROM t ORDER BY region")
    return frame["region"].tolist()


def simulation(wh, day: str, kind: str, value: str, environment: str | None = None,
               orgs: tuple[str, ...] | None = None) -> tuple[dict, pd.DataFrame]:
    """(the simulation as qlrf dr simulate --json prints it, the worst-exposed affected VMs).
    A failover simulation is fleet-wide (capacity is shared): refused for a reader restricted to `orgs`."""
    if orgs is not None:
        raise DataProblem("A failover simulation covers the whole fleet's shared capacity: it is not shown to a "
                          f"reader restricted to {', '.join(orgs) or 'no organisation'}.")
    from qlrf.dr.simulation import SimulationError, affected_vms, simulate
    from qlrf.dr.targets import TargetsError, configured_targets
    from qlrf.inventory.instance_types import default_instance_types

    try:
        targets = configured_targets()
        scenario = targets.scenario(kind, value, environment)
        types = default_instance_types()
        result = simulate(wh, scenario, targets, types, day, threads=2).as_dict()
        vms = affected_vms(wh, scenario, targets, types, day, limit=DRILL_LIMIT).to_pandas()
    except (SimulationError, TargetsError) as exc:
        raise DataProblem(str(exc)) from None
    return result, vms
