"""Request and response bodies of the HTTP API.

Request bodies forbid unknown fields: a client that sends ``approver`` or ``requested_by`` is told
(422) that identity is not something it can type, instead of being silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from qlrf.remediation.approvals import STATES, Task

TaskState = Literal[STATES]  # the store's own list: one place to add a state
PLAN_HASH = r"^sha256:[0-9a-f]{64}$"
TASK_ID = r"^task-[0-9a-f]{16}$"
MAX_INTENT = 8000  # the orchestrator caps further and says so; this only bounds the request
MAX_PAGE = 200
DEFAULT_PAGE = 50


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AskRequest(_Body):
    intent: str = Field(min_length=1, max_length=MAX_INTENT, description="the question or request, as an operator would type it")
    org_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="the organisation asked about (tenancy: issue 14)",
    )


class ReviewRequest(_Body):
    plan_hash: str = Field(pattern=PLAN_HASH, description="the hash of the plan you reviewed (GET /api/v1/tasks/{id})")
    reason: str = Field(min_length=1, max_length=2000, description="why: kept in the task and the audit log")


class AskResponse(BaseModel):
    """The JSON of ``qlrf ask --json`` (AskResult.as_dict()); documented here, returned as built."""

    model_config = ConfigDict(extra="allow")

    intent: str
    agent: str | None
    task_type: str | None
    answer: str
    citations: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]
    task_spec: dict[str, Any] | None
    task_id: str | None
    validation: list[dict[str, str]]
    refused_by: str | None = Field(description="the validation step that refused the intent, or null")
    source: Literal["model", "offline"]
    notes: list[str]
    usage: dict[str, Any] | None


class TaskSummary(BaseModel):
    """A task without its plan: what lists show.

    The fields are spelt out, not derived from :class:`Task`, on purpose: this is the public
    contract, so a column added to the store does not appear in every client's JSON unannounced.
    """

    id: str
    plan_hash: str
    plan_id: str
    state: TaskState
    environment: str
    platform: str
    site: str | None
    risk_level: str
    autonomy_mode: str
    requested_by: str
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    approver: str | None
    reason: str | None
    supersedes: str | None

    @classmethod
    def of(cls, task: Task) -> TaskSummary:
        return cls(**{name: getattr(task, name) for name in cls.model_fields})


class TaskDetail(TaskSummary):
    """A task with the gate's decision and the plan a reviewer approves by hash."""

    decision: dict[str, Any]
    plan_yaml: str
    plan: dict[str, Any] = Field(description="the stored plan, re-validated; its content_hash is plan_hash")

    @classmethod
    def of(cls, task: Task) -> TaskDetail:
        base = TaskSummary.of(task).model_dump()
        return cls(**base, decision=task.decision, plan_yaml=task.plan_yaml, plan=task.plan().model_dump(mode="json"))


class TaskPage(BaseModel):
    tasks: list[TaskSummary]
    total: int = Field(description="tasks matching the filters, over all pages")
    limit: int
    offset: int
    next_offset: int | None = Field(description="the offset of the next page, or null on the last one")


class ErrorBody(BaseModel):
    detail: str
    error: str


class CheckBody(BaseModel):
    name: str
    ok: bool
    detail: str


class ReadyBody(BaseModel):
    ready: bool
    checks: list[CheckBody]
    not_ready: list[str]
