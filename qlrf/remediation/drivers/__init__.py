"""Execution drivers, one module per platform, each through the platform's own SDK.

    aws      AwsDriver      ASG: new launch-template version + instance replacement; standalone: replace from AMI
    azure    AzureDriver    VM scale set: model imageReference update + manual upgrade of instances per wave
    gcp      GcpDriver      managed instance group: new instance template + applyUpdatesToInstances per wave
    vsphere  VsphereDriver  standalone VMs: clone from the golden template, power on, swap names

and, for the target kinds beyond those (the registry's drivers; see the README's "Target kinds"):

    azure_vm      AzurePlanDriver   scale sets (AzureDriver) + standalone VMs rebuilt from the golden image
    gcp_instance  GcpPlanDriver     zonal/regional MIGs (GcpDriver) + standalone instances by boot-disk swap
    vsphere_drs   VsphereDrsDriver  clone-and-swap that keeps a VM's place in its DRS cluster
    split         SplitDriver       one plan's groups to one driver, its standalone VMs to another

Every driver implements qlrf.remediation.executor.Driver and keeps, between ``prepare`` and
``rollback``, what it needs to undo its changes (previous versions, replaced instances). The
helpers below are the rules they share: which share of a group a wave replaces, and when a health
look passes the plan's health gate.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from qlrf.platforms import REGISTRY
from qlrf.remediation.executor import HealthReport, chunks
from qlrf.remediation.plans import PatchPlan

T = TypeVar("T")



class DriverError(RuntimeError):
    """A driver could not do what the wave needs; the message names the resource."""


def driver_for(platform: str, **kwargs: Any) -> Any:
    """The platform's driver, configured from the environment unless ``config=`` is given."""
    with_driver = [p.name for p in REGISTRY if p.driver]
    if platform not in with_driver:
        raise ValueError(f"no execution driver for platform {platform!r}; expected one of {', '.join(with_driver)}")
    driver = REGISTRY.get(platform).load_driver()
    if "config" not in kwargs:
        kwargs["config"] = importlib.import_module(driver.__module__).config_from_env()
    return driver(**kwargs)


def group_quota(plan: PatchPlan, index: int, group: str) -> int | None:
    """How many of ``group``'s instances wave ``index`` replaces: ceil(size x group_percent / 100),
    or None for "every one still on the old image" (the group's last wave, which absorbs rounding
    and any instance the group gained since the plan was made)."""
    waves = plan.spec.waves
    if group not in waves[index].groups:
        return 0
    if not any(group in w.groups for w in waves[index + 1 :]):
        return None
    size = next(g.size for g in plan.spec.targets.groups if g.name == group)
    return -(-size * waves[index].group_percent // 100)


def groups_through(plan: PatchPlan, index: int) -> list[str]:
    """Group names touched by waves 0..index, in plan order."""
    seen: dict[str, None] = {}
    for wave in plan.spec.waves[: index + 1]:
        for name in wave.groups:
            seen.setdefault(name, None)
    return list(seen)


def instances_through(plan: PatchPlan, index: int) -> list[str]:
    """Standalone asset ids of waves 0..index, in plan order."""
    return [asset for wave in plan.spec.waves[: index + 1] for asset in wave.instances]


def passes(plan: PatchPlan, healthy: int, total: int, *, group: bool) -> bool:
    """The health gate's verdict for ``healthy`` of ``total`` changed machines: groups need the
    plan's ``min_healthy_percent`` (the refresh's healthy percentage), standalone machines all."""
    if total <= 0:
        return False
    percent = plan.spec.health_gate.min_healthy_percent if group else 100
    return healthy * 100 >= percent * total


def group_health(plan: PatchPlan, checked: dict[str, list[tuple[str, str | None]]], changed: str) -> HealthReport:
    """Roll each group's members (label, problem or None) up into one HealthReport; the plan's
    min_healthy_percent applies per group, to the members changed so far. `changed` names the
    per-group count in the details (e.g. "upgraded", "updated")."""
    total = healthy = 0
    ok_all = True
    details: dict[str, Any] = {}
    unhealthy: dict[str, str] = {}
    for name, members in checked.items():
        good = sum(1 for _, problem in members if problem is None)
        unhealthy.update({label: problem for label, problem in members if problem})
        passed = passes(plan, good, len(members), group=True)
        ok_all &= passed
        total += len(members)
        healthy += good
        details[name] = {changed: len(members), "healthy": good, "passed": passed}
    if unhealthy:
        details["unhealthy"] = unhealthy
    return HealthReport(ok_all and total > 0, total, healthy, details)


def wait_for(
    what: str,
    check: Callable[[], T | None],
    *,
    timeout: float,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``check`` until it returns something other than None/False; DriverError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise DriverError(f"timed out after {timeout:g}s waiting for {what}")
        sleep(interval)


__all__ = [
    "DRIVERS",
    "DriverError",
    "chunks",
    "driver_for",
    "group_quota",
    "groups_through",
    "instances_through",
    "passes",
    "wait_for",
]
