"""The remediation policy (``policy/remediation.yaml``): per environment, when a scope needs a patch
plan and how that plan runs (threshold, autonomy mode, canary share, batches, max unavailable,
health gate, maintenance window), plus ``revoked_image_always_breaches`` and the approval queue's
work-in-progress limit (``queue.max_pending``, optionally ``queue.max_pending_per_environment``).

The file is the single source of the defaults: :meth:`RemediationPolicy.defaults` is the shipped
``remediation.yaml`` (in ``$QLRF_POLICY_DIR`` or ``policy/``), and a policy loaded from elsewhere
(``$QLRF_REMEDIATION_POLICY``) takes, for each environment or field it leaves out, the value of
that file. Nothing is copied into code, so editing the YAML changes the defaults; a defaults file
that leaves an environment out, or is malformed, is an error naming the file and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from qlrf.envparse import environ
from qlrf.remediation.canary.config import CanaryConfig
from qlrf.remediation.gate.modules import default_policy_dir
from qlrf.remediation.plans import AutonomyMode, MaintenanceWindow

ENV_REMEDIATION_POLICY = "QLRF_REMEDIATION_POLICY"
POLICY_FILE = "remediation.yaml"
ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")


class RemediationPolicyError(ValueError):
    """An unusable remediation policy file; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthGatePolicy(_Strict):
    timeout_seconds: int = Field(default=600, ge=1, le=86_400)
    min_healthy_percent: int = Field(default=100, ge=1, le=100)
    soak_seconds: int = Field(default=0, ge=0, le=86_400)


class EnvironmentPolicy(_Strict):
    drift_threshold: float = Field(ge=0, le=100)
    compliance_floor: float = Field(ge=0, le=100)
    autonomy_mode: AutonomyMode
    canary_percent: int = Field(ge=1, le=50)
    batches: int = Field(ge=1, le=20)
    max_unavailable: int = Field(ge=1)
    health_gate: HealthGatePolicy
    maintenance_window: MaintenanceWindow | None
    canary: CanaryConfig | None = None  # canary analysis for this environment's plans (a plan's own wins)

    @model_validator(mode="after")
    def _room_for_batches(self) -> EnvironmentPolicy:
        if 100 - self.canary_percent < self.batches:
            raise ValueError(f"batches ({self.batches}) cannot split the {100 - self.canary_percent}% left after the canary")
        return self


class QueuePolicy(_Strict):
    """How many plans may wait for a person at once: a change-approval board's work-in-progress limit.

    Why a limit and not a filter: every plan keeps its risk; the lower-ranked ones wait (deferred,
    audited) until the queue has room, so the queue stays one a person can work through.
    """

    max_pending: int = Field(ge=1, le=10_000)
    max_pending_per_environment: dict[Literal["dev", "staging", "prod"], int] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _positive(self) -> QueuePolicy:
        for env, limit in self.max_pending_per_environment.items():
            if limit < 1:
                raise ValueError(f"max_pending_per_environment.{env}: must be at least 1, got {limit}")
        return self


class JournalPolicy(_Strict):
    """What the next execution of a task does when the journal shows its last run was killed
    (qlrf.remediation.recovery): ``rollback`` (the default: back to the known-good state the journal
    recorded) or ``resume`` (continue from the first unfinished wave, every wave decided by the gate
    again). ``stale_after_seconds``: an unfinished run on another host counts as dead after this long
    without a journal write (a process of this host is checked directly)."""

    on_crash: Literal["rollback", "resume"] = "rollback"
    stale_after_seconds: int = Field(default=900, ge=1)
class TagDefault(_Strict):
    """A configured tag value for a scope: used only for a VM whose value the tag mapping cannot derive."""

    match: dict[Literal["platform", "account", "region", "site", "environment"], str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(min_length=1)


class CompliancePolicy(_Strict):
    """Compliance remediation (issue 12 item 6): which controls plan apply_tags / detach_public_ip, and the
    tag values per scope. Tag keys: ``owner``, ``site``, ``environment`` (the canonical keys written)."""

    tag_control: str = "RF-TAG-001"
    public_ip_control: str = "RF-NET-001"
    tag_defaults: list[TagDefault] = Field(default_factory=list)


class TerraformPolicy(_Strict):
    """Terraform/OpenTofu-managed estates (issue 12 item 4), see :mod:`qlrf.remediation.terraform`."""

    estates: list[dict[str, Any]] = Field(default_factory=list)

    def parsed(self) -> list[Any]:
        from qlrf.remediation.terraform import TerraformEstate

        return [TerraformEstate.model_validate(e) for e in self.estates]

    @model_validator(mode="after")
    def _valid_estates(self) -> TerraformPolicy:
        self.parsed()  # a bad estate is refused on load, naming its field
        return self


class RemediationPolicy(_Strict):
    version: Literal[1] = 1
    revoked_image_always_breaches: bool = True
    queue: QueuePolicy
    journal: JournalPolicy = Field(default_factory=JournalPolicy)
    environments: dict[Literal["dev", "staging", "prod"], EnvironmentPolicy]
    compliance: CompliancePolicy = CompliancePolicy()
    terraform: TerraformPolicy = TerraformPolicy()

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, doc: Any, info: ValidationInfo) -> Any:
        """Environments and fields the file leaves out take the values of the shipped policy file."""
        if not isinstance(doc, Mapping):
            return doc
        doc = dict(doc)
        context = info.context or {}
        queue = doc.get("queue")
        if queue is None or isinstance(queue, Mapping):
            queue_defaults = context["queue"] if "queue" in context else default_queue()
            doc["queue"] = {**queue_defaults, **(queue or {})}
        given = doc.get("environments") or {}
        if not isinstance(given, Mapping):
            return doc
        defaults: Mapping[str, Any] = context["defaults"] if "defaults" in context else default_environments()
        merged: dict[str, Any] = {}
        for env in sorted(set(ENVIRONMENTS) | set(given), key=lambda e: (e not in ENVIRONMENTS, e)):
            value = given.get(env)
            if env in defaults and (value is None or isinstance(value, Mapping)):
                merged[env] = {**defaults[env], **(value or {})}
            elif env in given:
                merged[env] = value  # unknown environment or a bad value: validation names it
        doc["environments"] = merged
        return doc

    @model_validator(mode="after")
    def _every_environment(self) -> RemediationPolicy:
        missing = [env for env in ENVIRONMENTS if env not in self.environments]
        if missing:
            raise ValueError(f"environments.{missing[0]}: missing (the policy must define {', '.join(ENVIRONMENTS)})")
        if self.environments["prod"].autonomy_mode == "full_auto":
            raise ValueError("environments.prod.autonomy_mode: production is never full_auto (use plan_only or canary_only)")
        return self

    @classmethod
    def defaults_path(cls) -> Path:
        """The shipped policy file, source of every default: ``$QLRF_POLICY_DIR/remediation.yaml`` or ``policy/``."""
        return default_policy_dir() / POLICY_FILE

    @classmethod
    def default_path(cls) -> Path:
        return Path(environ().get(ENV_REMEDIATION_POLICY) or cls.defaults_path())

    @classmethod
    def defaults(cls) -> RemediationPolicy:
        """The shipped policy file as it is now (re-read when it changes)."""
        return cls.model_validate({}, context={"defaults": default_environments(), "queue": default_queue()})

    @classmethod
    def load(cls, path: str | Path | None = None) -> RemediationPolicy:
        """The policy file (default: ``$QLRF_REMEDIATION_POLICY`` or ``policy/remediation.yaml``)."""
        path = Path(path) if path else cls.default_path()
        return _validate(path, _read(path), None)

    def for_env(self, environment: str) -> EnvironmentPolicy:
        try:
            return self.environments[environment]  # type: ignore[index]
        except KeyError:
            raise RemediationPolicyError(f"no remediation policy for environment {environment!r}") from None

    def thresholds(self) -> dict[str, float]:
        return {env: p.drift_threshold for env, p in self.environments.items()}


def _read(path: Path) -> Mapping[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RemediationPolicyError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise RemediationPolicyError(f"{path}: not YAML: {exc}") from exc
    if doc is None:
        doc = {}
    if not isinstance(doc, Mapping):
        raise RemediationPolicyError(f"{path}: invalid remediation policy: expected a mapping")
    return doc


def _validate(path: Path, doc: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> RemediationPolicy:
    context = None if defaults is None else {"defaults": defaults, "queue": {}}
    try:
        return RemediationPolicy.model_validate(doc, context=context)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(policy)'}: {e['msg']}" for e in exc.errors())
        raise RemediationPolicyError(f"{path}: invalid remediation policy: {fields}") from exc


def default_environments() -> dict[str, Any]:
    """The shipped file's ``environments`` (validated on their own, with no defaults to fall back on).

    Re-read on every call (a few hundred bytes) and validated once per distinct content, so an
    edited file takes effect at once, without trusting file timestamps.
    """
    return dict(_shipped()["environments"])


def default_queue() -> dict[str, Any]:
    """The shipped file's ``queue`` section (re-read like :func:`default_environments`)."""
    return dict(_shipped()["queue"])


def _shipped() -> dict[str, dict[str, Any]]:
    path = RemediationPolicy.defaults_path()
    try:
        text = path.read_text()
    except OSError as exc:
        raise RemediationPolicyError(f"{path}: cannot read the default remediation policy: {exc.strerror or exc}") from exc
    return _defaults_of(str(path), text)


@lru_cache(maxsize=8)
def _defaults_of(path: str, text: str) -> dict[str, dict[str, Any]]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RemediationPolicyError(f"{path}: not YAML: {exc}") from exc
    if not isinstance(doc, Mapping):
        raise RemediationPolicyError(f"{path}: invalid remediation policy: expected a mapping")
    _validate(Path(path), doc, defaults={})
    return {"environments": {str(env): dict(value) for env, value in (doc.get("environments") or {}).items()},
            "queue": dict(doc.get("queue") or {})}


__all__ = [
    "ENVIRONMENTS",
    "ENV_REMEDIATION_POLICY",
    "EnvironmentPolicy",
    "HealthGatePolicy",
    "JournalPolicy",
    "QueuePolicy",
    "RemediationPolicy",
    "RemediationPolicyError",
    "default_environments",
    "default_queue",
]
