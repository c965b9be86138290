"""The TaskSpec contract: what an AI answer or proposal *is*, before anything acts on it.

Two layers, so a model can never fill in what the system must decide:

* :class:`TaskProposal` is what a model (or the offline router) may say: the intent, the agent, the
  task type, the scope, the tool calls it made, its own risk guess and an explanation. It has no
  autonomy mode, no approval flag and no plan hash: ``extra="forbid"`` rejects them by name.
* :class:`TaskSpec` is the proposal plus what policy and the planner fill in
  (:meth:`TaskSpec.from_proposal`): the risk level (the *higher* of the model's guess and
  :func:`rule_risk`, never lower than the rule), the environment's autonomy mode, approval, and the
  hash of the plan an action maps to. It carries a deterministic ``content_hash`` (the pattern of
  :class:`qlrf.remediation.plans.PatchPlan`), so an approval binds to exactly one spec.

Versioned: ``schema_version`` is ``"1.0"``; the JSON Schema is exported to
``qlrf/ai/schema/taskspec.v1.json`` by ``python -m qlrf.ai.taskspec`` and a test keeps it current.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from qlrf.platforms import PLATFORMS
from qlrf.remediation.planner import RISK_ORDER, risk_level
from qlrf.remediation.plans import AutonomyMode, ContentSealed, RiskLevel
from qlrf.remediation.policy import ENVIRONMENTS, RemediationPolicy

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).parent / "schema" / "taskspec.v1.json"

INTENT_MAX_CHARS = 2000  # an operator's question, not a document; longer intents are refused
TEXT_MAX_CHARS = 4000  # explanation and tool-result summaries: enough to cite, too short to smuggle a dump
MAX_ASSET_IDS = 10_000
MAX_TOOL_CALLS = 50

AGENTS: tuple[str, ...] = ("drift", "patch", "compliance", "incident", "dr", "cost", "security", "image")
ACTION_TYPES: tuple[str, ...] = (
    "remediate_drift",
    "rebuild_image",
    "dr_drill",
    "simulate_failover",
    "compliance_report",
    "open_incident",
    "rightsize",
)
TASK_TYPES: tuple[str, ...] = ("answer", *ACTION_TYPES)
# Actions that change running VMs or images: their risk follows the planner's rule (environment, size).
CHANGING_TYPES: frozenset[str] = frozenset({"remediate_drift", "rebuild_image", "dr_drill", "rightsize"})
# Actions whose task is a plan from an existing planner: the spec must carry that plan's hash.
PLAN_TYPES: frozenset[str] = frozenset({"remediate_drift"})
AUTONOMY_ORDER: tuple[str, ...] = ("plan_only", "canary_only", "full_auto")  # least to most autonomous
UNKNOWN_SCOPE_SIZE = 1001  # an unresolved, unbounded scope counts as large: the rule errs high, never low

Agent = Literal[AGENTS]  # type: ignore[valid-type]
TaskType = Literal[TASK_TYPES]  # type: ignore[valid-type]
Environment = Literal[ENVIRONMENTS]  # type: ignore[valid-type]
Platform = Literal[PLATFORMS]  # type: ignore[valid-type]
AssetId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class TaskSpecError(ValueError):
    """An invalid proposal or spec; the message names every failing field (``scope.platform: ...``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(_Strict):
    """Which VMs the task is about; every filter left out widens it. Resolution fills ``target_count``."""

    org: str | None = Field(default=None, min_length=1, max_length=128)
    site: str | None = Field(default=None, min_length=1, max_length=128)
    environment: Environment | None = None
    platform: Platform | None = None
    asset_ids: tuple[AssetId, ...] = Field(default=(), max_length=MAX_ASSET_IDS)
    target_count: int | None = Field(default=None, ge=0, description="concrete targets after resolution")

    def size(self) -> int:
        """Targets the rule should assume: resolved count, else the named assets, else 'large'."""
        if self.target_count is not None:
            return self.target_count
        return len(self.asset_ids) if self.asset_ids else UNKNOWN_SCOPE_SIZE


class ToolCall(_Strict):
    """One tool call made while answering: recorded whatever its outcome, refused ones included."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    arguments: dict[str, Any] = Field(default_factory=dict)
    status: Literal["ok", "error", "refused"]
    result_summary: str = Field(default="", max_length=TEXT_MAX_CHARS)


class TaskProposal(_Strict):
    """What a model or the offline router may propose; everything else is decided by the system."""

    schema_version: Literal["1.0"] = SCHEMA_VERSION
    intent: str = Field(min_length=1, max_length=INTENT_MAX_CHARS)
    agent: Agent
    task_type: TaskType
    scope: Scope = Scope()
    tool_calls: tuple[ToolCall, ...] = Field(default=(), max_length=MAX_TOOL_CALLS)
    model_risk_level: RiskLevel | None = Field(default=None, description="the model's guess; can only raise risk")
    explanation: str = Field(default="", max_length=TEXT_MAX_CHARS)

    @field_validator("intent")
    @classmethod
    def _intent_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class TaskSpec(TaskProposal, ContentSealed):
    """A proposal with risk, autonomy, approval and plan hash filled in by rule and policy."""

    risk_level: RiskLevel | None = Field(default=None, description="max(model_risk_level, rule); never lower")
    autonomy_mode: AutonomyMode | None = Field(default=None, description="from policy; null for answer")
    approval_required: bool = False
    plan_hash: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    content_hash: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        # Frozen model: the risk is raised in place once, here, before anyone can read the spec.
        floor = higher(self.model_risk_level, rule_risk(self.task_type, self.scope))
        object.__setattr__(self, "risk_level", higher(self.risk_level, floor))
        problems = list(_contract_problems(self))
        if problems:
            raise ValueError("; ".join(problems))
        if self.content_hash is not None and self.content_hash != self.compute_hash():
            raise ValueError("content_hash: does not match the spec's content (edited after sealing?)")
        return self

    @classmethod
    def from_proposal(
        cls, proposal: TaskProposal, *, policy: RemediationPolicy, plan_hash: str | None = None
    ) -> TaskSpec:
        """The sealed spec for ``proposal``: autonomy from ``policy``, approval by rule, risk by rule."""
        is_action = proposal.task_type != "answer"
        return cls(
            **proposal.model_dump(include=set(TaskProposal.model_fields)),  # a TaskSpec's own fields re-decided
            autonomy_mode=policy_autonomy(policy, proposal.scope.environment) if is_action else None,
            approval_required=is_action,
            plan_hash=plan_hash,
        ).sealed()


def _contract_problems(spec: TaskSpec) -> Iterable[str]:
    """What no spec may say, whoever built it: read-only answers act on nothing; actions wait for a human."""
    if spec.task_type == "answer":
        for name in ("autonomy_mode", "plan_hash"):
            if getattr(spec, name) is not None:
                yield f"{name}: must be null for task_type 'answer' (an answer creates no task)"
        if spec.approval_required:
            yield "approval_required: must be false for task_type 'answer' (an answer creates no task)"
        return
    if spec.autonomy_mode is None:
        yield f"autonomy_mode: required for task_type {spec.task_type!r} (filled from policy)"
    if not spec.approval_required:
        yield f"approval_required: must be true for task_type {spec.task_type!r} (AI tasks wait for approval)"
    if spec.task_type in PLAN_TYPES and spec.plan_hash is None:
        yield f"plan_hash: required for task_type {spec.task_type!r} (the task is bound to its plan)"


def higher(*levels: str | None) -> RiskLevel:
    """The highest of the given risk levels (``None`` ignored; ``low`` when none is given)."""
    given = [RISK_ORDER.index(level) for level in levels if level is not None]
    return RISK_ORDER[max(given, default=0)]  # type: ignore[return-value]


def rule_risk(task_type: str, scope: Scope) -> RiskLevel:
    """The rule-based floor of a task's risk, independent of any model.

    ``answer`` and actions that change no VM or image (``compliance_report``, ``open_incident``,
    ``simulate_failover``) are low. Changing actions follow the patch planner's rule
    (:func:`qlrf.remediation.planner.risk_level`): prod > staging > dev, more than 100 targets at
    least medium, more than 1000 high (critical in prod). No environment filter means prod is in
    scope; an unresolved scope with no asset ids counts as more than 1000 targets.
    """
    if task_type not in CHANGING_TYPES:
        return "low"
    return risk_level(scope.environment or "prod", scope.size(), revoked=False)  # type: ignore[return-value]


def policy_autonomy(policy: RemediationPolicy, environment: str | None) -> AutonomyMode:
    """The environment's autonomy mode; with no environment filter, the least autonomous of all."""
    environments = [environment] if environment else list(ENVIRONMENTS)
    modes = [policy.environments[env].autonomy_mode for env in environments]  # type: ignore[index]
    return min(modes, key=AUTONOMY_ORDER.index)


def field_errors(error: ValidationError) -> str:
    """Pydantic's errors as ``field.path: message`` lines, so a retry prompt or a human sees the field."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")  # model-level messages already name their field
        lines.append(f"{where}: {message}" if where else message)
    return "; ".join(lines)


def parse_proposal(data: Mapping[str, Any] | str) -> TaskProposal:
    """A model's proposal (a mapping or JSON text), or :class:`TaskSpecError` naming each bad field."""
    return _parse(TaskProposal, data)


def parse_spec(data: Mapping[str, Any] | str) -> TaskSpec:
    """A stored spec (a mapping or JSON text), or :class:`TaskSpecError` naming each bad field."""
    return _parse(TaskSpec, data)


def _parse(model: type[BaseModel], data: Mapping[str, Any] | str) -> Any:
    try:
        if isinstance(data, str):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        raise TaskSpecError(f"invalid {model.__name__}: {field_errors(exc)}") from None


def schema_text() -> str:
    """The TaskSpec JSON Schema as committed: sorted keys, two-space indent, trailing newline."""
    schema = TaskSpec.model_json_schema()
    schema["$id"] = "https://resilience-fabric/schemas/taskspec.v1.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Regenerate the exported schema file (run after changing the contract; a test checks it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema_text())
    return path


if __name__ == "__main__":  # python -m qlrf.ai.taskspec  -> rewrites the exported schema
    sys.stdout.write(f"wrote {write_schema()}\n")
