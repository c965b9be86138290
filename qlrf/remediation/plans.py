"""Patch plans as code: the exact, hash-bound description of a remediation a human approves.

A plan is a YAML document (kind PatchPlan). Everything that decides what changes is inside
`spec`; the content hash covers metadata and spec, so an approval of hash H can never be replayed
against a different plan: modify a plan and it gets a new hash and needs a new approval.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from qlrf import yamldoc
from qlrf.inventory.contract import PLATFORMS
from qlrf.platforms import GROUP_PLATFORMS
from qlrf.remediation.canary.config import CanaryConfig

AutonomyMode = Literal["plan_only", "canary_only", "full_auto"]
RiskLevel = Literal["low", "medium", "high", "critical"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class PlanError(ValueError):
    """An invalid plan; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def sealed_hash(document: Mapping[str, Any]) -> str:
    """The content hash of a sealed contract given as JSON-mode data: sha256 over its canonical JSON,
    `content_hash` left out (ContentSealed's rule; the task store checks stored documents with it)."""
    body = {k: v for k, v in document.items() if k != "content_hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class ContentSealed(BaseModel):
    """A contract a human approves by hash: sha256 over its canonical JSON, `content_hash` excluded.

    Shared by patch plans and AI task specs so an approval binds both the same way.
    """

    content_hash: str | None = None

    def compute_hash(self) -> str:
        return sealed_hash(self.model_dump(mode="json", exclude={"content_hash"}))

    def sealed_document(self) -> dict:
        """The sealed contract as JSON-mode data, dumped once (a big plan's dump costs as much as its hash)."""
        body = self.model_dump(mode="json")
        body["content_hash"] = sealed_hash(body)
        return body

    def sealed(self) -> Self:
        """The same contract with its content hash filled in."""
        return self.model_copy(update={"content_hash": self.compute_hash()})


class ImageRef(_Strict):
    family: str | None = None
    version: str | None = None
    image_ref: str = Field(min_length=1, description="AMI id, Azure image id / URN, GCE image URL, vSphere template")


class GroupTarget(_Strict):
    """A scaling group replaced as a whole: ASG, VM scale set, managed instance group."""

    kind: Literal["asg", "vmss", "mig"]
    platform: Literal[GROUP_PLATFORMS]  # type: ignore[valid-type]
    account: str
    region: str
    name: str
    size: int = Field(ge=0)
    from_family: str | None = Field(default=None, description="the image family every member runs (the gate requires it)")


class InstanceTarget(_Strict):
    """A standalone VM replaced from the golden image (AWS/Azure/GCP) or cloned from the template (vSphere)."""

    asset_id: str
    platform: Literal[PLATFORMS]  # type: ignore[valid-type]
    account: str
    region: str
    name: str
    from_image: str | None = None
    from_family: str | None = Field(default=None, description="the VM's image family (the gate requires it)")


class Targets(_Strict):
    groups: list[GroupTarget] = Field(default_factory=list)
    instances: list[InstanceTarget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> Targets:
        if not self.groups and not self.instances:
            raise ValueError("a plan must target at least one group or instance")
        return self

    def count(self) -> int:
        return sum(g.size for g in self.groups) + len(self.instances)

    def from_families(self) -> list[str | None]:
        """Each target's from-family, groups first (None where a target does not carry one)."""
        return [g.from_family for g in self.groups] + [t.from_family for t in self.instances]


class HealthGate(_Strict):
    """What must hold after a wave before the next starts; failing it rolls back and stops the plan."""

    require_state: Literal["running"] = "running"
    require_status_checks: bool = True
    timeout_seconds: int = Field(default=600, ge=1, le=86_400)
    min_healthy_percent: int = Field(default=100, ge=1, le=100, description="for groups: the refresh's healthy percentage")
    soak_seconds: int = Field(default=0, ge=0, le=86_400,
                              description="once healthy, the wave must stay healthy this long (every look) to pass")


class Wave(_Strict):
    name: str
    canary: bool = False
    instances: list[str] = Field(default_factory=list, description="asset ids of standalone targets in this wave")
    groups: list[str] = Field(default_factory=list, description="group names refreshed in this wave")
    group_percent: int = Field(default=100, ge=1, le=100, description="share of each group's instances replaced")


class MaintenanceWindow(_Strict):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(default_factory=lambda: list(DAYS))
    start: time
    end: time
    timezone: Literal["UTC"] = "UTC"

    def is_open(self, at: datetime) -> bool:
        at = at.astimezone(UTC)
        if DAYS[at.weekday()] not in self.days:
            return False
        now = at.time().replace(tzinfo=None)
        if self.start <= self.end:
            return self.start <= now < self.end
        return now >= self.start or now < self.end  # window across midnight


class Rollback(_Strict):
    strategy: Literal["previous_launch_template_version", "previous_image", "previous_instance_template", "restore_clone",
                      "restore_tags", "reattach_public_ip"]
    launch_template_version: str | None = None
    image_ref: str | None = None


class Metadata(_Strict):
    id: str = Field(min_length=1)
    created_at: datetime
    created_by: str
    reason: str
    environment: Literal["dev", "staging", "prod"]
    platform: Literal[PLATFORMS]  # type: ignore[valid-type]
    site: str | None = None
    risk_level: RiskLevel
    autonomy_mode: AutonomyMode
    finding: dict[str, str | int | float | None] = Field(default_factory=dict)
    # Tenancy (issue 14): the organisation every target belongs to (the planner never mixes two) and
    # the project when all targets share one. Left out of the serialised plan when unset, so plans
    # made before tenancy keep their content hash.
    org: str | None = None
    project: str | None = None

    @model_serializer(mode="wrap")
    def _omit_unset_tenancy(self, handler: SerializerFunctionWrapHandler) -> dict:
        data = handler(self)
        for key in ("org", "project"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


PlanType = Literal["reimage", "apply_tags", "detach_public_ip"]
COMPLIANCE_TYPES: tuple[str, ...] = ("apply_tags", "detach_public_ip")


class TagChange(_Strict):
    """The tags one VM gets: only keys it lacks (a present value is never overwritten)."""

    asset_id: str
    tags: dict[str, str] = Field(min_length=1)
    derived_from: dict[str, str] = Field(default_factory=dict, description="tag key -> where the value came from")


class ComplianceChange(_Strict):
    """A compliance fix re-imaging cannot make (issue 12 item 6): ``apply_tags`` or ``detach_public_ip``.

    ``held`` names the VMs of the scope the planner could not fix on its own (no derivable value):
    listed for a human, never guessed, and not targets of this plan.
    """

    type: Literal["apply_tags", "detach_public_ip"]
    controls: list[str] = Field(min_length=1, description="the failed control ids this plan fixes")
    tags: list[TagChange] = Field(default_factory=list)
    held: dict[str, str] = Field(default_factory=dict, description="asset id -> why a person must decide")


class TerraformDelivery(_Strict):
    """A Terraform/OpenTofu-managed target (issue 12 item 4): the change is made in the Terraform code,
    never through the cloud API, and proven by a ``terraform show -json`` plan file (the evidence).

    Hashed with the plan, so the repo, file pattern, pointer and expected resources are approved too.
    """

    delivery: Literal["terraform"] = "terraform"
    repo: str = Field(min_length=1, description="the local checkout the patch is made against")
    path_glob: str = Field(min_length=1, description="glob (relative to repo) of the files that pin the image")
    json_pointer: str | None = Field(default=None, description="RFC 6901 pointer in a *.tfvars.json file")
    hcl_variable: str | None = Field(default=None, description="variable name in a *.tfvars file (`name = \"...\"`)")
    image_attribute: str = Field(default="ami", min_length=1, description="the resource attribute that carries the image")
    expected_resources: list[str] = Field(min_length=1, description="resource addresses the terraform plan may change")
    source: str = Field(description="why the target is Terraform-managed: tag:<k>=<v> or policy:<estate name>")

    @model_validator(mode="after")
    def _one_locator(self) -> TerraformDelivery:
        if (self.json_pointer is None) == (self.hcl_variable is None):
            raise ValueError("name exactly one of json_pointer (for *.tfvars.json) or hcl_variable (for *.tfvars)")
        if self.json_pointer is not None and not self.json_pointer.startswith("/"):
            raise ValueError(f"json_pointer {self.json_pointer!r} must start with '/'")
        return self


_OPTIONAL_SECTIONS = ("compliance", "terraform")  # left out of the document when absent: older plans keep their hash


class Spec(_Strict):
    targets: Targets
    from_images: list[ImageRef] = Field(default_factory=list)
    to_image: ImageRef | None = None
    waves: list[Wave] = Field(min_length=1)
    health_gate: HealthGate = HealthGate()
    max_unavailable: int = Field(default=1, ge=1)
    maintenance_window: MaintenanceWindow | None = None
    rollback: Rollback
    # optional, left out of the dump (and so of the hash) when absent: plans made before it keep their hash
    canary: CanaryConfig | None = Field(default=None, exclude_if=lambda v: v is None,
                                        description="canary analysis after each wave (else the policy's, if any)")
    compliance: ComplianceChange | None = None
    terraform: TerraformDelivery | None = None

    @model_serializer(mode="wrap")
    def _drop_absent_sections(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict:
        out = handler(self)
        for key in _OPTIONAL_SECTIONS:
            if out.get(key) is None:
                out.pop(key, None)
        return out

    @property
    def plan_type(self) -> str:
        return self.compliance.type if self.compliance else "reimage"

    @model_validator(mode="after")
    def _images_or_compliance(self) -> Spec:
        if self.compliance is None:
            if self.to_image is None:
                raise ValueError("to_image: a re-imaging plan must name its golden image")
            if not self.from_images:
                raise ValueError("from_images: a re-imaging plan must list the images it replaces")
        else:
            if self.terraform is not None:
                raise ValueError("terraform: compliance plans are executed through the cloud API, not Terraform")
            if self.targets.groups:
                raise ValueError("targets.groups: compliance plans target VMs, not groups")
            if self.compliance.type == "apply_tags":
                tagged = sorted(t.asset_id for t in self.compliance.tags)
                wanted = sorted(t.asset_id for t in self.targets.instances)
                if tagged != wanted:
                    raise ValueError(f"compliance.tags must name every target exactly once (tags {tagged}, targets {wanted})")
        return self

    @model_validator(mode="after")
    def _waves_cover_targets(self) -> Spec:
        if not self.waves[0].canary:
            raise ValueError("waves[0] must be the canary wave (canary: true)")
        if any(w.canary for w in self.waves[1:]):
            raise ValueError("only waves[0] may be a canary")
        instance_ids = [t.asset_id for t in self.targets.instances]
        waved = [i for w in self.waves for i in w.instances]
        if sorted(waved) != sorted(instance_ids):
            missing = sorted(set(instance_ids) - set(waved))
            extra = sorted(set(waved) - set(instance_ids))
            twice = sorted({i for i in waved if waved.count(i) > 1})
            raise ValueError(f"waves must list every instance target exactly once (missing {missing}, unknown {extra}, twice {twice})")
        groups = {g.name for g in self.targets.groups}
        unknown = sorted({g for w in self.waves for g in w.groups} - groups)
        if unknown:
            raise ValueError(f"waves name unknown groups {unknown}")
        for group in groups:
            covered = sum(w.group_percent for w in self.waves if group in w.groups)
            if covered < 100:
                raise ValueError(f"group {group!r} is only {covered}% covered by the waves")
        return self

    @field_validator("to_image")
    @classmethod
    def _to_image_pinned(cls, value: ImageRef | None) -> ImageRef | None:
        if value is not None and value.version is None:
            raise ValueError("to_image.version must name the golden version")
        return value


class PatchPlan(_Strict, ContentSealed):
    apiVersion: Literal["qlrf/v1"] = "qlrf/v1"
    kind: Literal["PatchPlan"] = "PatchPlan"
    metadata: Metadata
    spec: Spec

    def to_yaml(self, *, hash_checked: bool = False) -> str:
        """The sealed plan as YAML. `hash_checked`: the caller has just checked ``content_hash`` against
        the content (TaskStore does), so it is written as it is instead of computed a third time."""
        if hash_checked and self.content_hash is not None:
            return yamldoc.dump(self.model_dump(mode="json"))
        return yamldoc.dump(self.sealed_document())

    def wave_targets(self, index: int) -> int:
        wave = self.spec.waves[index]
        sizes = {g.name: g.size for g in self.spec.targets.groups}
        return len(wave.instances) + sum(-(-sizes[g] * wave.group_percent // 100) for g in wave.groups)


# libyaml's safe loader when PyYAML was built with it: the pure-Python one takes seconds to read back a
# plan of 11,000 targets (written by qlrf.yamldoc, not yaml.safe_dump, for the same reason).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def yaml_document(text: str, source: str, error: type[ValueError]) -> Any:
    """The YAML document of a contract; ``error`` naming ``source`` when it is not YAML."""
    try:
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise error(f"{source}: not YAML: {exc}") from exc


def field_errors(exc: ValidationError) -> str:
    """Every validation error as ``field.path: message``, so the user finds the field (shared by the contracts)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(plan)'}: {e['msg']}" for e in exc.errors())


def read_contract(path: str | Path, error: type[ValueError]) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc}") from exc


def parse_plan(text: str, source: str = "<plan>") -> PatchPlan:
    """Validate a plan document; a hash that does not match its content is refused (tampering)."""
    doc = yaml_document(text, source, PlanError)
    try:
        plan = PatchPlan.model_validate(doc)
    except ValidationError as exc:
        raise PlanError(f"{source}: invalid patch plan: {field_errors(exc)}") from exc
    if plan.content_hash is not None and plan.content_hash != plan.compute_hash():
        raise PlanError(f"{source}: content_hash does not match the plan's content (edited after sealing?)")
    return plan


def load_plan(path: str | Path) -> PatchPlan:
    return parse_plan(read_contract(path, PlanError), str(path))


__all__ = ["COMPLIANCE_TYPES", "PLATFORMS", "ComplianceChange", "PatchPlan", "PlanError", "TagChange",
           "TerraformDelivery", "load_plan", "parse_plan", "sealed_hash"]
