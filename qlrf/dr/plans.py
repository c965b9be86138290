"""Drill plans as code: the exact, hash-bound description of a disaster-recovery drill.

A drill plan is a YAML document (kind ``DrillPlan``), validated like the patch plans
(qlrf/remediation/plans.py): strict fields, errors naming the field, and a content hash over
metadata and spec (``ContentSealed``), so an approval of hash H can never be replayed against an
edited plan, and a sealed plan whose content no longer matches its hash is refused.

What a drill does (Chaos Toolkit's shape: steady state before, method, steady state after,
rollback = cleanup):

* ``scope``: which protected VMs (a site, an application tier = inventory ``group``, explicit asset
  ids, or a selector over inventory fields; conditions combine with AND), at most ``max_vms``.
* ``target``: where they recover (DR region on AWS/GCP, paired location on Azure, datacenter on
  vSphere) and the optional placement details each platform needs.
* ``restore_from``: the newest snapshot (default) or, on vSphere, the golden template.
* ``steady_state``: checks before (the restore point exists and is young enough) and after (the
  restored VM runs, passed its status checks, and the measured RTO/RPO met the objectives).
* ``steps``: the five phases every platform goes through, each with its own timeout.
* ``cleanup``: always (default) | on_success | never.
* ``objectives``: RTO and RPO in seconds.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qlrf.inventory.contract import PLATFORMS
from qlrf.remediation.plans import (
    AutonomyMode,
    ContentSealed,
    RiskLevel,
    field_errors,
    read_contract,
    yaml_document,
)

KIND = "DrillPlan"
# The phases of a drill, in order. Where a platform has nothing to do in a phase (GCP snapshots are
# global, so there is no copy) the step is recorded as skipped, never silently left out.
STEP_NAMES: tuple[str, ...] = ("locate", "copy", "provision", "launch", "verify")
STEP_MEANING = {
    "locate": "find the newest restore point of each VM",
    "copy": "copy it into the DR target (AWS copy_snapshot, Azure snapshot copy; none on GCP/vSphere)",
    "provision": "make it bootable there (AWS register_image, Azure/GCP disk, vSphere clone)",
    "launch": "start the restored VM (AWS run_instances, Azure/GCP VM create, vSphere power on)",
    "verify": "wait until it is running and its status checks pass",
}
BEFORE_CHECKS = ("restore_point_exists", "restore_point_age")
AFTER_CHECKS = ("running", "status_checks", "tagged", "rto_within_objective", "rpo_within_objective")
CleanupPolicy = Literal["always", "on_success", "never"]
# Inventory fields a selector may name (plus ``tags.<key>``).
SELECTOR_FIELDS = ("account", "region", "zone", "name", "state", "image_ref", "instance_type", "group", "site",
                   "environment", "owner")


class DrillPlanError(ValueError):
    """An invalid or tampered drill plan; the message names the file and the field (or the hash)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Metadata(_Strict):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    created_at: datetime
    created_by: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    environment: Literal["dev", "staging", "prod"]
    platform: Literal[PLATFORMS]  # type: ignore[valid-type]
    site: str | None = None
    risk_level: RiskLevel = "medium"
    autonomy_mode: AutonomyMode = "canary_only"


class Scope(_Strict):
    site: str | None = None
    group: str | None = Field(default=None, description="the application tier: the inventory's group")
    vms: list[str] = Field(default_factory=list, description="explicit asset ids")
    selector: dict[str, str | list[str]] = Field(default_factory=dict,
                                                 description="inventory field (or tags.<key>) -> value or values")
    max_vms: int = Field(default=50, ge=1, le=1000)

    @model_validator(mode="after")
    def _something_selected(self) -> Scope:
        if not (self.site or self.group or self.vms or self.selector):
            raise ValueError("a scope needs at least one of site, group, vms or selector")
        if len(set(self.vms)) != len(self.vms):
            raise ValueError(f"vms lists {sorted({v for v in self.vms if self.vms.count(v) > 1})} more than once")
        unknown = sorted(k for k in self.selector if k not in SELECTOR_FIELDS and not k.startswith("tags."))
        if unknown:
            raise ValueError(f"selector names unknown field(s) {unknown} (fields: {', '.join(SELECTOR_FIELDS)}, tags.<key>)")
        return self


class Target(_Strict):
    """Where the VMs recover. ``region`` is the DR region (AWS, GCP), the paired location (Azure) or
    the datacenter (vSphere); the rest is per-platform placement, all optional."""

    region: str = Field(min_length=1)
    zone: str | None = None                 # AWS availability zone, GCP zone
    instance_type: str | None = None        # default: the source VM's type
    subnet_id: str | None = None            # AWS
    resource_group: str | None = None       # Azure
    project: str | None = None              # GCP (default: the source's)
    resource_pool: str | None = None        # vSphere (default: the datacenter's first cluster's pool)
    folder: str | None = None               # vSphere (default: the datacenter's VM folder)
    network: str | None = None              # vSphere: the DR port group every NIC moves to (default: as is)


class RestoreFrom(_Strict):
    kind: Literal["snapshot", "template"] = "snapshot"
    template: str | None = Field(default=None, description="vSphere golden template (kind: template)")

    @model_validator(mode="after")
    def _template_named(self) -> RestoreFrom:
        if self.kind == "template" and not self.template:
            raise ValueError("restore_from.kind template needs restore_from.template (the golden template's name)")
        return self


class Check(_Strict):
    check: str
    max_seconds: int | None = Field(default=None, ge=1, description="restore_point_age: the oldest acceptable")


def _default_before() -> list[Check]:
    return [Check(check="restore_point_exists")]


def _default_after() -> list[Check]:
    return [Check(check=c) for c in AFTER_CHECKS]


class SteadyState(_Strict):
    before: list[Check] = Field(default_factory=_default_before)
    after: list[Check] = Field(default_factory=_default_after)

    @model_validator(mode="after")
    def _known(self) -> SteadyState:
        for where, allowed in (("before", BEFORE_CHECKS), ("after", AFTER_CHECKS)):
            for i, c in enumerate(getattr(self, where)):
                if c.check not in allowed:
                    raise ValueError(f"{where}[{i}].check {c.check!r} is not one of {', '.join(allowed)}")
                if c.check == "restore_point_age" and c.max_seconds is None:
                    raise ValueError(f"{where}[{i}]: restore_point_age needs max_seconds")
        return self


class Step(_Strict):
    name: Literal[STEP_NAMES]  # type: ignore[valid-type]
    timeout_seconds: int = Field(ge=1, le=86_400)


def _default_steps() -> list[Step]:
    timeouts = {"locate": 120, "copy": 1800, "provision": 1800, "launch": 600, "verify": 900}
    return [Step(name=n, timeout_seconds=timeouts[n]) for n in STEP_NAMES]


class Objectives(_Strict):
    rto_seconds: int = Field(ge=1)
    rpo_seconds: int = Field(ge=1)


class DrillSpec(_Strict):
    scope: Scope
    target: Target
    restore_from: RestoreFrom = RestoreFrom()
    steady_state: SteadyState = SteadyState()
    steps: list[Step] = Field(default_factory=_default_steps)
    cleanup: CleanupPolicy = "always"
    objectives: Objectives

    @model_validator(mode="after")
    def _steps_in_order(self) -> DrillSpec:
        names = [s.name for s in self.steps]
        if names != list(STEP_NAMES):
            raise ValueError(f"steps must be exactly {', '.join(STEP_NAMES)} in this order (each with its "
                             f"timeout_seconds), got {', '.join(names) or 'none'}")
        return self

    def timeout(self, step: str) -> int:
        return next(s.timeout_seconds for s in self.steps if s.name == step)


class DrillPlan(_Strict, ContentSealed):
    apiVersion: Literal["qlrf/v1"] = "qlrf/v1"
    kind: Literal["DrillPlan"] = "DrillPlan"
    metadata: Metadata
    spec: DrillSpec

    @model_validator(mode="after")
    def _platform_fits(self) -> DrillPlan:
        if self.spec.restore_from.kind == "template" and self.metadata.platform != "vsphere":
            raise ValueError("spec.restore_from.kind template is for vSphere only (clouds restore from snapshots)")
        return self

    @property
    def plan_hash(self) -> str:
        return self.content_hash or self.compute_hash()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.sealed().model_dump(mode="json"), sort_keys=False)


def parse_drill_plan(text: str, source: str = "<drill plan>") -> DrillPlan:
    """Validate a drill plan document; a hash that does not match its content is refused (tampering)."""
    doc = yaml_document(text, source, DrillPlanError)
    if not isinstance(doc, dict):
        raise DrillPlanError(f"{source}: a drill plan is a YAML mapping (apiVersion, kind, metadata, spec)")
    if doc.get("kind") != KIND:
        raise DrillPlanError(f"{source}: kind: expected {KIND}, got {doc.get('kind')!r}")
    try:
        plan = DrillPlan.model_validate(doc)
    except ValidationError as exc:
        raise DrillPlanError(f"{source}: invalid drill plan: {field_errors(exc)}") from exc
    if plan.content_hash is not None and plan.content_hash != plan.compute_hash():
        raise DrillPlanError(f"{source}: content_hash {plan.content_hash} does not match the plan's content "
                             f"({plan.compute_hash()}): edited after sealing? Re-seal it and get a new approval")
    return plan


def load_drill_plan(path: str | Path) -> DrillPlan:
    return parse_drill_plan(read_contract(path, DrillPlanError), str(path))


__all__ = ["AFTER_CHECKS", "BEFORE_CHECKS", "STEP_MEANING", "STEP_NAMES", "DrillPlan", "DrillPlanError", "load_drill_plan",
           "parse_drill_plan"]
