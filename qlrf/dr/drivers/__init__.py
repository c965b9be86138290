"""Drill drivers, one module per platform, each through the platform's own SDK.

    aws      AwsDrillDriver      newest EBS snapshot of the root volume -> copy_snapshot to the DR region ->
                                 register_image -> run_instances -> running + status checks ok
    vsphere  VsphereDrillDriver  newest VM snapshot (or the golden template) -> CloneVM_Task into the DR
                                 datacenter -> power on -> poweredOn, connected, not red

A driver works one phase at a time for one VM (:class:`VmRun`): ``start(step, run, ...)`` makes the
phase's calls and records every resource it creates in ``run.resources`` *before* waiting on it;
``ready(step, run)`` is polled by the runner until it returns True (or raises
:class:`DrillStepError` for a state that will never get better). The runner owns time: timeouts,
clocks and sleeps never live in a driver.

Every resource a drill creates carries the tags below (name prefix ``qlrf-drill-`` where a platform
cannot tag at creation), so a later run (``qlrf dr cleanup``, or the sweep at the start of the next
drill) finds and removes what a killed run left behind.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from qlrf.dr.plans import DrillPlan, Target

TAG_DRILL = "qlrf:drill"            # the drill id
TAG_VM = "qlrf:drill-vm"            # the protected VM's asset id
TAG_PLAN = "qlrf:drill-plan"        # the plan id
TAG_HASH = "qlrf:drill-plan-hash"   # the plan hash
TAG_STARTED = "qlrf:drill-started"  # drill start, ISO 8601 UTC
NAME_PREFIX = "qlrf-drill-"
DRIVERS = {"aws": "qlrf.dr.drivers.aws:AwsDrillDriver", "azure": "qlrf.dr.drivers.azure:AzureDrillDriver",
           "gcp": "qlrf.dr.drivers.gcp:GcpDrillDriver",
           "vsphere": "qlrf.dr.drivers.vsphere:VsphereDrillDriver"}


class DrillStepError(RuntimeError):
    """A step failed for one VM; the message says why (the runner adds the step's name)."""


@dataclass(frozen=True)
class DrillVm:
    """A protected VM in a drill's scope (from the inventory)."""

    asset_id: str
    platform: str
    account: str
    region: str
    name: str
    zone: str | None = None
    instance_type: str | None = None
    site: str | None = None
    environment: str | None = None
    group: str | None = None
    image_ref: str | None = None


@dataclass(frozen=True)
class RestorePoint:
    id: str
    at: datetime | None  # None: no point in time (a golden template): RPO unknown
    kind: str  # snapshot | template
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resource:
    """Something a drill created (or found left over), enough to remove it again."""

    kind: str  # snapshot | image | instance | volume | vm ...
    id: str
    region: str
    asset_id: str | None = None
    drill_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "region": self.region, "asset_id": self.asset_id,
                "drill_id": self.drill_id}


@dataclass
class DrillContext:
    """What every call of one drill shares: its id, plan, start and the tags its resources carry."""

    drill_id: str
    plan: DrillPlan
    started_at: datetime

    @property
    def target(self) -> Target:
        return self.plan.spec.target

    def tags(self, vm: DrillVm) -> dict[str, str]:
        return {TAG_DRILL: self.drill_id, TAG_VM: vm.asset_id, TAG_PLAN: self.plan.metadata.id,
                TAG_HASH: self.plan.plan_hash, TAG_STARTED: self.started_at.isoformat().replace("+00:00", "Z")}

    def resource_name(self, vm: DrillVm) -> str:
        return f"{NAME_PREFIX}{self.drill_id}-{vm.name}"[:120]


@dataclass
class VmRun:
    """One VM's way through a drill: what the driver found and made, and what the runner measured."""

    vm: DrillVm
    restore_point: RestorePoint | None = None
    resources: list[Resource] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # the driver's own notes between phases
    steps: list[dict[str, Any]] = field(default_factory=list)
    outcome: str | None = None  # None while it is still going
    reason: str | None = None
    healthy_at: datetime | None = None
    removed: list[dict[str, Any]] = field(default_factory=list)
    cleaned_up: bool = False

    @property
    def active(self) -> bool:
        return self.outcome is None


class ClientCache:
    """One SDK client per key (region, client class, subscription), made on first use, thread-safe:
    a drill calls the same few clients for every VM, and building one (credentials, endpoint
    discovery) costs more than the call."""

    def __init__(self, make: Callable[[str], Any]):
        self._make = make
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._make(key)
            return self._clients[key]

    def keys(self) -> list[str]:
        return list(self._clients)

    def clear(self) -> None:
        with self._lock:
            self._clients.clear()


class DrillDriver(Protocol):
    platform: str

    def locate(self, ctx: DrillContext, run: VmRun) -> RestorePoint: ...
    def start(self, step: str, ctx: DrillContext, run: VmRun) -> bool: ...  # False: nothing to do on this platform
    def ready(self, step: str, ctx: DrillContext, run: VmRun) -> bool: ...
    def check(self, name: str, ctx: DrillContext, run: VmRun) -> str | None: ...  # None = holds, else why not
    def would_create(self, ctx: DrillContext, run: VmRun) -> list[str]: ...
    def leftovers(self, target: Target, keep_drill: str | None = None) -> list[Resource]: ...
    def remove(self, resources: list[Resource]) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


def drill_driver_for(platform: str, **kwargs: Any) -> DrillDriver:
    """The platform's drill driver, configured from the environment unless ``config=`` is given."""
    if platform not in DRIVERS:
        raise ValueError(f"no drill driver for platform {platform!r} yet; drills run on {', '.join(sorted(DRIVERS))}")
    module_name, _, cls_name = DRIVERS[platform].partition(":")
    module = importlib.import_module(module_name)
    if "config" not in kwargs:
        kwargs["config"] = module.config_from_env()
    return getattr(module, cls_name)(**kwargs)


__all__ = ["DRIVERS", "NAME_PREFIX", "ClientCache", "TAG_DRILL", "TAG_HASH", "TAG_PLAN", "TAG_STARTED", "TAG_VM", "DrillContext",
           "DrillDriver", "DrillStepError", "DrillVm", "Resource", "RestorePoint", "VmRun", "drill_driver_for"]
