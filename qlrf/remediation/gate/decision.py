"""What the gate answers: a Decision, and a typed Outcome saying *why* it is what it is.

Callers branch on ``Decision.outcome`` (never on the wording of a reason): a policy deny is a
verdict on the plan, whereas an undefined or malformed result, an engine error or an unreachable
OPA means the gate did not decide at all, and must not be recorded as a rejection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """Why a decision is what it is; everything below POLICY_DENY is the gate failing closed."""

    ALLOWED = "allowed"
    NEEDS_APPROVAL = "needs_approval"
    POLICY_DENY = "policy_deny"  # the policies decided: no
    UNDEFINED = "undefined"  # the policy did not decide
    MALFORMED = "malformed"  # the policy's result is not a well-formed decision
    BAD_INPUT = "bad_input"  # the request is not a JSON document
    ENGINE_ERROR = "engine_error"  # a broken module, a failed compile or evaluation
    REMOTE_UNREACHABLE = "remote_unreachable"  # OPA refused / closed the connection
    REMOTE_TIMEOUT = "remote_timeout"  # OPA did not answer in time
    REMOTE_ERROR = "remote_error"  # OPA answered, but not with a decision (HTTP error, bad body)

    @property
    def gate_failed(self) -> bool:
        """True when the gate did not decide (an error), as opposed to a policy verdict."""
        return self not in (Outcome.ALLOWED, Outcome.NEEDS_APPROVAL, Outcome.POLICY_DENY)


class GateFailure(RuntimeError):
    """Raised by the engines when they cannot decide; ``outcome`` says how they failed."""

    outcome: Outcome = Outcome.ENGINE_ERROR

    def __init__(self, message: str, outcome: Outcome | None = None):
        super().__init__(message)
        if outcome is not None:
            self.outcome = outcome


@dataclass(frozen=True)
class Decision:
    allow: bool
    requires_approval: bool
    reasons: tuple[str, ...]
    input: Any = field(repr=False)
    approval_reasons: tuple[str, ...] = ()
    approved: bool = False
    source: str = "embedded"
    outcome: Outcome | None = None  # None: derived from allow / reasons / requires_approval

    def __post_init__(self) -> None:
        if self.outcome is None:
            object.__setattr__(self, "outcome", _verdict(self.allow, self.requires_approval, self.reasons))

    @classmethod
    def deny(cls, reason: str, request: Any, source: str, outcome: Outcome = Outcome.POLICY_DENY) -> Decision:
        return cls(allow=False, requires_approval=False, reasons=(reason,), input=request, source=source, outcome=outcome)

    @property
    def gate_failed(self) -> bool:
        return self.outcome.gate_failed  # type: ignore[union-attr]

    def as_dict(self) -> dict:
        """The decision with its input, as the audit log records it."""
        return {
            "allow": self.allow,
            "requires_approval": self.requires_approval,
            "deny": list(self.reasons),
            "approval_reasons": list(self.approval_reasons),
            "approved": self.approved,
            "source": self.source,
            "outcome": str(self.outcome),
            "input": self.input,
        }


def _verdict(allow: bool, requires_approval: bool, reasons: tuple[str, ...]) -> Outcome:
    if allow and not reasons:
        return Outcome.ALLOWED
    if requires_approval and not reasons:
        return Outcome.NEEDS_APPROVAL
    return Outcome.POLICY_DENY


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate keys {sorted({k for k in keys if keys.count(k) > 1})}")
    return dict(pairs)


def strict_json(text: str | bytes) -> Any:
    """JSON that rejects duplicate keys (a forged field must not silently win)."""
    return json.loads(text, object_pairs_hook=_reject_duplicates)


def _string_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return tuple(sorted(value))
    return None


def decision_from_result(result: Any, request: Any, source: str) -> Decision:
    """A Decision from the policy's result document; anything unexpected is a deny."""
    if result is None:
        return Decision.deny("undefined decision: the policy did not decide (treated as deny)", request, source,
                             Outcome.UNDEFINED)
    if not isinstance(result, dict):
        return Decision.deny(f"malformed decision: expected an object, got {type(result).__name__}", request, source,
                             Outcome.MALFORMED)
    allow, needs, approved = result.get("allow"), result.get("requires_approval"), result.get("approved", False)
    reasons = _string_list(result.get("deny"))
    approval_reasons = _string_list(result.get("approval_reasons", []))
    if not isinstance(allow, bool) or not isinstance(needs, bool) or not isinstance(approved, bool):
        return Decision.deny("malformed decision: allow, requires_approval and approved must be booleans", request,
                             source, Outcome.MALFORMED)
    if reasons is None or approval_reasons is None:
        return Decision.deny("malformed decision: deny and approval_reasons must be lists of strings", request, source,
                             Outcome.MALFORMED)
    return Decision(
        allow=allow and not reasons,  # never allow with a reason to deny, whatever the policy says
        requires_approval=needs,
        reasons=reasons,
        input=request,
        approval_reasons=approval_reasons,
        approved=approved,
        source=source,
    )


__all__ = ["Decision", "GateFailure", "Outcome", "decision_from_result", "strict_json"]
