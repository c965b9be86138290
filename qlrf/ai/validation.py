"""The validation pipeline's policy step: may this TaskSpec go ahead, wait for a human, or not run?

The decision is Rego's, never Python's: the spec becomes one gate request with action ``ai_task``,
decided by ``policy/ai_task.rego`` at its own decision (``AI_TASK_DECISION_PATH``; build the gate
with ``Gate.embedded(decision_path=...)`` / ``Gate.from_env(decision_path=...)``), so the embedded
and remote (OPA) gates give AI tasks the same answer and remediation decisions pay nothing for it. This module
only builds that request and types the answer as a :class:`StepResult` the pipeline can branch on
through its :class:`~qlrf.remediation.gate.Outcome` (never on the wording of a reason).

Whether the model's proposal tried to set its own autonomy is a fact about the *raw* proposal (the
parsed :class:`~qlrf.ai.taskspec.TaskProposal` forbids those fields, so it cannot say):
:func:`proposal_set_autonomy` reads it and the policy denies such a task.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qlrf.ai.taskspec import TaskSpec
from qlrf.remediation.gate import Decision, Gate, Outcome

AI_TASK_ACTION = "ai_task"
AI_TASK_DECISION_PATH = "qlrf/gate/ai_task/decision"
POLICY_STEP = "policy"
# Fields by which a proposal would grant itself autonomy: its mode, or a waived approval.
AUTONOMY_FIELDS: tuple[str, ...] = ("autonomy_mode", "approval_required")


@dataclass(frozen=True)
class StepResult:
    """One validation step's verdict: its outcome, the reasons that deny, the reasons to approve."""

    step: str
    outcome: Outcome
    reasons: tuple[str, ...]
    approval_reasons: tuple[str, ...]
    decision: Decision

    @property
    def passed(self) -> bool:
        """The task may go ahead now (allowed, or approval already given)."""
        return self.outcome is Outcome.ALLOWED

    @property
    def needs_approval(self) -> bool:
        return self.outcome is Outcome.NEEDS_APPROVAL

    @property
    def gate_failed(self) -> bool:
        """The gate did not decide (an error, an undefined decision): not a verdict on the task."""
        return self.outcome.gate_failed


def proposal_set_autonomy(raw: Mapping[str, Any] | str | Any) -> bool:
    """Whether a raw proposal (a mapping or JSON text) named any field that grants autonomy."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return False  # not a proposal at all: parsing refuses it, not this check
    return isinstance(raw, Mapping) and any(name in raw for name in AUTONOMY_FIELDS)


def policy_request(
    spec: TaskSpec,
    *,
    requested_by: str,
    proposal_set_autonomy: bool = False,
    approval: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The gate input for ``spec`` (fields documented in ``policy/ai_task.rego``).

    ``environment`` stays null when the scope names none: the policy then counts prod as in scope.
    The approval binds to the spec's content hash, so an edited spec needs a new approval.
    """
    request: dict[str, Any] = {
        "action": AI_TASK_ACTION,
        "task_type": spec.task_type,
        "environment": spec.scope.environment,
        "autonomy_mode": spec.autonomy_mode,
        "risk_level": spec.risk_level,
        "targets": spec.scope.size(),
        "approval_required": spec.approval_required,
        "proposal_set_autonomy": proposal_set_autonomy,
        "task_hash": spec.content_hash or spec.compute_hash(),
        "requested_by": requested_by,
    }
    if approval is not None:
        request["approval"] = dict(approval)
    return request


def policy_step(
    spec: TaskSpec,
    gate: Gate,
    *,
    requested_by: str,
    proposal_set_autonomy: bool = False,
    approval: Mapping[str, Any] | None = None,
) -> StepResult:
    """Ask ``gate`` about ``spec`` (action ``ai_task``); anything but a decision fails closed."""
    request = policy_request(
        spec, requested_by=requested_by, proposal_set_autonomy=proposal_set_autonomy, approval=approval
    )
    decision = gate.decide(request)
    return StepResult(
        step=POLICY_STEP,
        outcome=decision.outcome,  # type: ignore[arg-type]  # always set by Decision.__post_init__
        reasons=decision.reasons,
        approval_reasons=decision.approval_reasons,
        decision=decision,
    )


__all__ = [
    "AI_TASK_ACTION",
    "AUTONOMY_FIELDS",
    "POLICY_STEP",
    "StepResult",
    "policy_request",
    "policy_step",
    "proposal_set_autonomy",
]
