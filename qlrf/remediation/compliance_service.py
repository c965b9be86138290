"""Planning a day's compliance fixes (issue 12 item 6) into the approval queue.

Reads the day's ``vm_compliance`` and ``inventory`` partitions per platform, builds the apply_tags /
detach_public_ip plans (:mod:`.compliance_plans`) and proposes them best-ranked first through the same
path as the drift plans (:func:`qlrf.remediation.service.propose_plans`): the gate's previews, one open
plan per scope and plan type (superseding older pending ones), the queue's WIP limit. The VMs held for
a person are audited once per day (``compliance_held``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from qlrf.inventory.contract import PLATFORMS
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.compliance_plans import build_compliance_plans
from qlrf.remediation.executor import GateLike
from qlrf.remediation.plans import PatchPlan
from qlrf.remediation.policy import RemediationPolicy
from qlrf.remediation.queue import rank_plans
from qlrf.remediation.service import PlanningOutcome, audit_queue, environment_fleet_size, propose_plans
from qlrf.warehouse import PartitionMissing, Warehouse


@dataclass
class ComplianceOutcome:
    day: str
    plans: list[PatchPlan] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)
    outcome: PlanningOutcome = field(default_factory=lambda: PlanningOutcome(None, []))


def newest_compliance_day(wh: Warehouse) -> str:
    days = [d for d in wh.dates("vm_compliance") if any(wh.exists("vm_compliance", d, p) for p in PLATFORMS)]
    if not days:
        raise PartitionMissing("no vm_compliance partition in the warehouse: run `qlrf run` first")
    return days[-1]


def propose_compliance_day(
    wh: Warehouse, policy: RemediationPolicy, store: TaskStore, gate: GateLike, *, day: str | None, requested_by: str,
    site: str | None = None, log: Callable[[str], None] = lambda _: None,
) -> ComplianceOutcome:
    """Plan and propose every compliance fix of `day` (default: the newest vm_compliance day)."""
    day = day or newest_compliance_day(wh)
    result = ComplianceOutcome(day)
    present = [p for p in PLATFORMS if wh.exists("vm_compliance", day, p) and wh.exists("inventory", day, p)]
    if not present:
        raise PartitionMissing(f"no vm_compliance + inventory partition for {day}: run `qlrf run --date {day}` first")
    fleet_by_env: dict[str, int] = {}  # the drift-delta denominator when no drift partition gives it
    for platform in present:
        vm_compliance = wh.read("vm_compliance", day, platform)
        for env in vm_compliance.column("environment").to_pylist():
            fleet_by_env[env] = fleet_by_env.get(env, 0) + 1
        planned = build_compliance_plans(vm_compliance, wh.read("inventory", day, platform),
                                         policy, day, created_by=requested_by)
        chosen = [p for p in planned.plans if site is None or p.metadata.site == site]
        result.plans.extend(chosen)
        result.held.update({a: w for a, w in planned.held.items() if site is None or planned.held_where[a][0] == site})
    for plan in rank_plans(result.plans):  # one plan per scope and type: each is its own "finding" to propose_plans
        env = plan.metadata.environment
        fleet = environment_fleet_size(wh, day, env) or fleet_by_env.get(env) or plan.spec.targets.count()
        one = PlanningOutcome(None, [])
        propose_plans(store, gate, [plan], one, day=day, requested_by=requested_by, fleet_size=fleet, log=log,
                      limits=policy.queue)
        for name in ("proposed", "deferred", "queue_deferred", "displaced"):
            getattr(result.outcome, name).extend(getattr(one, name))
    audit_queue(store, [result.outcome], policy.queue, day=day, requested_by=requested_by)
    if store.audit is not None and result.held:
        store.audit.append_once("compliance_held", requested_by, f"compliance:{day}" + (f":{site}" if site else ""),
                                {"day": day, "site": site, "held": dict(sorted(result.held.items()))})
    return result


__all__ = ["ComplianceOutcome", "newest_compliance_day", "propose_compliance_day"]
