"""The shapes that pass between the AI orchestrator's parts, fixed here so each part can be built alone.

The flow of one question (issue 10)::

    intent ──screen──> Proposer (offline router | model) ──Draft──> validation pipeline ──AskResult
                          │ runs the agent's tools through a ToolBox          (schema, scope, policy, task)

* A :class:`Proposer` turns an intent into a :class:`Draft`: the agent and task type it chose, the
  answer text with its citations, the tool calls it made, and the *raw* proposal (a mapping or JSON
  text, unparsed, so the pipeline can see what a model tried to set). It never writes a task.
* The pipeline (``qlrf.ai.orchestrator``) validates the draft step by step and records each step as
  a :class:`Step`; the outcome of a question is one :class:`AskResult`, which is also the JSON of
  ``qlrf ask --json`` and of ``POST /api/v1/ai/execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from qlrf.ai.tools.registry import ToolBox

Source = Literal["model", "offline"]
StepOutcome = Literal["passed", "failed", "skipped", "flagged"]


@dataclass(frozen=True)
class Citation:
    """A number or fact the answer states, and the tool result it comes from."""

    tool: str
    name: str  # what the value is, e.g. "rows_total" or "facts.vms" (a path in that tool's result)
    value: Any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Draft:
    """What a proposer hands the validation pipeline: an answer, and maybe a task to propose."""

    source: Source
    agent: str
    task_type: str
    answer: str
    citations: tuple[Citation, ...] = ()
    tool_calls: tuple[dict[str, Any], ...] = ()  # ToolCall-shaped: name, arguments, status, result_summary
    proposal: Mapping[str, Any] | str | None = None  # raw TaskProposal (None: nothing usable was proposed)
    notes: tuple[str, ...] = ()  # e.g. "model timed out after 30 s: answered by the offline router"
    usage: Mapping[str, Any] | None = None  # model tokens and estimated cost, summed over the conversation


@dataclass(frozen=True)
class AskContext:
    """Who asks, for which organisation, and the means to look things up (one per question)."""

    intent: str
    requested_by: str
    org: str | None
    toolbox_for: Callable[[str], ToolBox]  # agent name -> a ToolBox limited to that agent's tools
    conversation: str  # id shared by the tool-call audit records of this question


class ProposerFailed(RuntimeError):
    """No usable draft (model timed out, answered invalid JSON twice, cited numbers no tool returned...).

    The message says what failed and where, without secrets; the orchestrator records it as a note
    and answers through the offline router instead. Never a task.
    """


class Proposer(Protocol):
    """Offline router or model client: intent in, :class:`Draft` out, or :class:`ProposerFailed`."""

    source: Source

    def draft(self, ctx: AskContext) -> Draft: ...


@dataclass(frozen=True)
class Step:
    """One validation step as the user sees it: ``screen``, ``schema``, ``scope``, ``policy``, ``task``."""

    step: str
    outcome: StepOutcome
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class AskResult:
    """The whole answer to one question: the JSON of ``qlrf ask --json`` and of the HTTP API."""

    intent: str
    agent: str | None
    task_type: str | None
    answer: str
    source: Source
    citations: tuple[Citation, ...] = ()
    tool_calls: tuple[dict[str, Any], ...] = ()
    task_spec: Mapping[str, Any] | None = None
    task_id: str | None = None
    validation: tuple[Step, ...] = ()
    refused_by: str | None = None  # the step that refused the intent, when one did
    notes: tuple[str, ...] = ()
    usage: Mapping[str, Any] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "agent": self.agent,
            "task_type": self.task_type,
            "answer": self.answer,
            "citations": [c.as_dict() for c in self.citations],
            "tool_calls": [dict(c) for c in self.tool_calls],
            "task_spec": dict(self.task_spec) if self.task_spec is not None else None,
            "task_id": self.task_id,
            "validation": [s.as_dict() for s in self.validation],
            "refused_by": self.refused_by,
            "source": self.source,
            "notes": list(self.notes),
            "usage": dict(self.usage) if self.usage is not None else None,
            **dict(self.extra),
        }
