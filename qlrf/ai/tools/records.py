"""Tools over the task store and the audit log: what waits for a human, and what happened."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from qlrf.ai.tools.context import ToolContext, ToolInputError

_MODEL = ConfigDict(extra="forbid", strict=True)
_TASK_FIELDS = ("id", "plan_id", "environment", "platform", "site", "risk_level", "autonomy_mode", "requested_by",
                "created_at", "expires_at")


class PendingQuery(BaseModel):
    model_config = _MODEL
    environment: str | None = None
    limit: int = Field(50, ge=1, le=500)


class AuditQuery(BaseModel):
    model_config = _MODEL
    kind: str | None = Field(None, description="record kind, e.g. task_approved, dry_run, ai_tool_call")
    subject: str | None = Field(None, description="e.g. a task id")
    limit: int = Field(20, ge=1, le=200)


def list_pending_tasks(ctx: ToolContext, q: PendingQuery) -> dict:
    if ctx.tasks is None:
        raise ToolInputError("no task store is configured for this conversation")
    tasks = ctx.tasks.list(states="pending_approval", environment=q.environment)
    if ctx.orgs is not None:  # a task belongs to its plan's organisation; a plan without one to nobody
        tasks = [t for t in tasks if _plan_org(t.plan_yaml) in ctx.orgs]
    rows = [{k: v for k, v in t.to_dict().items() if k in _TASK_FIELDS} for t in tasks[: q.limit]]
    return {"rows": rows, "pending": len(tasks), "facts": {"source": "task store", "state": "pending_approval"}}


def _plan_org(plan_yaml: str) -> str | None:
    import yaml

    try:
        meta = (yaml.safe_load(plan_yaml) or {}).get("metadata") or {}
    except yaml.YAMLError:
        return None
    return meta.get("org") if isinstance(meta, dict) else None


def query_audit(ctx: ToolContext, q: AuditQuery) -> dict:
    if ctx.orgs is not None:  # the audit chain is per organisation only in the Postgres store (row-level security)
        raise ToolInputError("the audit log is not kept per organisation here: not available to a conversation "
                             "restricted to " + (", ".join(sorted(ctx.orgs)) or "no organisation"))
    records = ctx.audit.records(subject=q.subject, kind=q.kind, limit=q.limit)
    rows = [{k: v for k, v in r.to_dict().items() if k not in ("mac", "prev_hash")} for r in reversed(records)]
    return {"rows": rows, "facts": {"source": "audit log", "newest_first": True, "head_seq": ctx.audit.head()[0]}}
