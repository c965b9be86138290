"""A ``remediate_drift`` proposal's plan: the existing planner's plan for the drift findings in scope.

An AI task never invents a patch plan: the findings of the day (``findings_from_partition``) in the
resolved scope go through the same planner as the drift sensor's (``build_plans``), and through the
same remediation gate (``plan_decision``) before the task store. One spec binds one plan, so when
the scope covers several findings or families the plan with the most targets is proposed and the
others are named in the answer (ask again, narrower, to propose one of them). The planner is asked
for candidates (id and size, one query over every platform's partition for every finding in scope) and
only the proposed plan is built: "remediate drift everywhere" on a million-VM day would otherwise build
seventy plans of ten thousand targets each to keep one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from qlrf.ai.taskspec import Scope
from qlrf.remediation.findings import Finding, findings_from_partition
from qlrf.remediation.planner import PlanCandidate, plan_candidates
from qlrf.remediation.plans import PatchPlan
from qlrf.remediation.policy import RemediationPolicy
from qlrf.remediation.service import environment_fleet_size, registries_for, scaling_groups_for
from qlrf.warehouse import Warehouse


@dataclass(frozen=True)
class DriftPlan:
    """The plan proposed for a scope, the finding it came from, and the plans not proposed."""

    plan: PatchPlan
    finding: Finding
    fleet_size: int  # the environment's VMs: the gate's drift-delta denominator
    others: tuple[str, ...]  # "<plan id> (<scope>, <n> targets)" of the plans left for another ask
    skipped: tuple[str, ...]  # targets the planner could not plan (no golden image...)


def _in_scope(finding: Finding, scope: Scope) -> Finding | None:
    if (scope.site and finding.site != scope.site) or (scope.environment and finding.environment != scope.environment):
        return None
    if not scope.asset_ids:
        return finding
    wanted = set(scope.asset_ids)
    kept = tuple(a for a in finding.asset_ids if a in wanted)
    return dataclasses.replace(finding, asset_ids=kept) if kept else None


def drift_plan(wh: Warehouse, policy: RemediationPolicy, scope: Scope, platforms: tuple[str, ...], *, day: str,
               requested_by: str) -> DriftPlan | None:
    """The plan with the most targets among the findings in ``scope`` on ``day`` (None: nothing to plan)."""
    present = [p for p in platforms if wh.exists("drift_scores", day, p) and wh.exists("vm_drift", day, p)]
    if not present:
        return None
    vm_drift = [wh.source("vm_drift", day, p) for p in present]  # every platform in one scan per query
    findings = findings_from_partition([wh.source("drift_scores", day, p) for p in present], vm_drift, policy, day,
                                       site=scope.site, environment=scope.environment)
    in_scope = [f for f in (_in_scope(f, scope) for f in findings) if f is not None]
    skipped: list[str] = []
    candidates: list[PlanCandidate] = plan_candidates(
        in_scope, vm_drift, registries_for(wh, day, present), policy,
        {p: scaling_groups_for(wh, day, p) for p in present}, created_by=requested_by, skipped=skipped) if in_scope else []
    if not candidates:
        return None
    candidates.sort(key=lambda c: (-c.targets, c.id))
    best, rest = candidates[0], candidates[1:]
    plan, finding = best.build(), best.finding
    others = tuple(f"{c.id} ({c.finding.scope}, {c.targets} targets)" for c in rest)
    fleet = environment_fleet_size(wh, day, finding.environment) or max(1, len(finding.asset_ids))
    return DriftPlan(plan, finding, fleet, others, tuple(skipped))


__all__ = ["DriftPlan", "drift_plan"]
