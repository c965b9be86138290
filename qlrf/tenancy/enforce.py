"""The entry-point helper: authorise, and leave a record when the answer is no.

Why a wrapper around :func:`qlrf.tenancy.roles.authorise`: every door (CLI, HTTP API, inbound events,
dashboard) must both refuse *and* say on the audit log who tried what, where and why, or a refused
attack leaves no trace. :func:`require` does both; the decision itself stays in ``authorise``.

Where an action happens is never taken from the caller: a task's organisation comes from the task
in the store (:func:`task_org`), not from a request field, an event payload or a tag on a VM.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import yaml

from qlrf.remediation.audit import AuditLog
from qlrf.tenancy.roles import AccessDenied, Principal, authorise

UNASSIGNED_ORG = "unassigned"  # a task whose plan names no organisation (written before tenancy)
ACCESS_DENIED = "access_denied"  # the audit kind of every refusal
ANONYMOUS = "anonymous"  # the actor of a refusal when nobody could be identified
T = TypeVar("T")
DENIED_EXIT = 4  # the CLI's exit code for "not allowed" (2 is bad input, 1 a failed run)


def deny_record(audit: AuditLog | None, *, who: str | None, action: str, org: str | None, project: str | None,
                why: str, subject: str | None = None, mode: str | None = None) -> None:
    """Append an ``access_denied`` record (its own transaction, so a refused change leaves the record
    even though the change itself rolled back)."""
    if audit is None:
        return
    where = org or "-"
    options = {}
    try:  # the attempt joins the chain of the organisation it was aimed at, where its admins read it
        from qlrf.tenancy.scope import check_org

        if org is not None:
            options["org"] = check_org(org)
    except ValueError:
        pass  # "*" or no organisation: the writer's chain (unassigned)
    audit.append(ACCESS_DENIED, who or ANONYMOUS, subject or f"org:{where}",
                 {"who": who, "mode": mode, "action": action, "org": org, "project": project, "why": why}, **options)


def require(principal: Principal, action: str, org: str, project: str | None = None, *,
            audit: AuditLog | None, subject: str | None = None) -> None:
    """:func:`authorise`, and on :class:`AccessDenied` an ``access_denied`` audit record, then re-raise."""
    try:
        authorise(principal, action, org, project)
    except AccessDenied as exc:
        deny_record(audit, who=principal.name, action=action, org=org, project=project, why=str(exc),
                    subject=subject, mode=principal.mode)
        raise


def refusal(principal: Principal, action: str, org: str, project: str | None = None, *,
            audit: AuditLog | None, subject: str | None = None) -> tuple[str, Callable[[], None]] | None:
    """None when `principal` may do `action` in (org, project); else why not, and a callback that writes
    the ``access_denied`` record. For doors that refuse later than they check (the AI's task step: a
    viewer's question is answered, only a proposal is refused), so only an actual attempt is recorded."""
    try:
        authorise(principal, action, org, project)
    except AccessDenied as exc:
        why = str(exc)
        return why, lambda: deny_record(audit, who=principal.name, action=action, org=org, project=project, why=why,
                                        subject=subject, mode=principal.mode)
    return None


def document_org(document: Any) -> str | None:
    """``metadata.org`` (or a task spec's ``scope.org``) of a plan document, if it names one."""
    if not isinstance(document, Mapping):
        return None
    for section in ("metadata", "scope"):
        part = document.get(section)
        if isinstance(part, Mapping) and isinstance(part.get("org"), str) and part["org"].strip():
            return part["org"].strip().lower()
    spec = document.get("spec")
    if isinstance(spec, Mapping):
        return document_org(spec)
    return None


def task_org(task: Any) -> str:
    """The organisation a stored task belongs to: its ``org`` column when the store has one, else its
    plan's ``metadata.org``, else :data:`UNASSIGNED_ORG`. Never anything the caller sent."""
    column = getattr(task, "org", None)
    if isinstance(column, str) and column.strip():
        return column.strip().lower()
    try:
        document = yaml.safe_load(task.plan_yaml)  # YAML plans and JSON specs alike
    except yaml.YAMLError:
        return UNASSIGNED_ORG
    return document_org(document) or UNASSIGNED_ORG


def task_project(task: Any) -> str | None:
    column = getattr(task, "project", None)
    if isinstance(column, str) and column.strip():
        return column.strip().lower()
    try:
        document = yaml.safe_load(task.plan_yaml)
    except yaml.YAMLError:
        return None
    meta = document.get("metadata") if isinstance(document, Mapping) else None
    value = meta.get("project") if isinstance(meta, Mapping) else None
    return value.strip().lower() if isinstance(value, str) and value.strip() else None


def require_on_task(principal: Principal, action: str, task: Any, *, audit: AuditLog | None) -> None:
    """`action` on a stored task, in the task's own organisation (and project)."""
    require(principal, action, task_org(task), task_project(task), audit=audit, subject=task.id)


def review(store: Any, principal: Principal, task_id: str, decide: Callable[[str], T]) -> T:
    """An approver's decision on a stored task (approve, reject, modify, continue, roll back).

    Checks ``approve`` in the task's own organisation, then calls ``decide(principal.name)`` (the store
    method, which keeps its own rules: plan hash, expiry, never the requester). A self-approval the
    store refuses is also recorded as ``access_denied``, so every refused decision leaves a trace."""
    from qlrf.remediation.approvals import SelfApprovalRefused

    task = store.get(task_id)  # TaskNotFound: nothing to authorise against
    require_on_task(principal, "approve", task, audit=store.audit)
    try:
        return decide(principal.name)
    except SelfApprovalRefused as exc:
        deny_record(store.audit, who=principal.name, action="approve", org=task_org(task), project=task_project(task),
                    why=str(exc), subject=task.id, mode=principal.mode)
        raise


def plan_document(plan: Any) -> Any:
    """A plan or task document as plain data (a PatchPlan, an AiTaskDocument, YAML/JSON text, a mapping)."""
    if hasattr(plan, "model_dump"):
        return plan.model_dump(mode="json")
    if isinstance(plan, str):
        try:
            return yaml.safe_load(plan)
        except yaml.YAMLError:
            return None
    document = getattr(plan, "document", None)  # AiTaskDocument / DrillDocument keep the sealed spec as a mapping
    return document if isinstance(document, Mapping) else plan


def review_modify(store: Any, principal: Principal, task_id: str, plan_hash: str, new_plan: Any, reason: str) -> Any:
    """An approver's edit of a pending task (the new task needs someone else's approval). The edited
    plan must stay in the task's organisation: an edit naming another one would move the work into a
    tenant the editor may hold no role in, so it is refused and recorded."""
    task = store.get(task_id)
    org, project = task_org(task), task_project(task)
    require(principal, "approve", org, project, audit=store.audit, subject=task.id)
    new_org = document_org(plan_document(new_plan)) or UNASSIGNED_ORG
    if new_org != org:
        why = (f"{principal.name} may not modify task {task.id} into organisation {new_org}: "
               f"the task belongs to {org}")
        deny_record(store.audit, who=principal.name, action="approve", org=org, project=project, why=why,
                    subject=task.id, mode=principal.mode)
        raise AccessDenied(why)
    return review(store, principal, task_id, lambda who: store.modify(task_id, plan_hash, new_plan, who, reason))


def guarded_approve(store: Any, principal_for: Callable[[str], Principal]) -> Callable[[str, str, str, str], object]:
    """The inbound events' ``approve(task_id, plan_hash, approver, reason)``: the approver's grants are
    checked on the task's organisation (read from the store, never from the event's data), then the
    store's own rules apply (hash, self-approval, expiry)."""

    def approve(task_id: str, plan_hash: str, approver: str, reason: str) -> object:
        principal = principal_for(approver)
        return review(store, principal, task_id, lambda who: store.approve(task_id, plan_hash, who, reason))

    return approve


__all__ = [
    "ACCESS_DENIED",
    "DENIED_EXIT",
    "UNASSIGNED_ORG",
    "deny_record",
    "document_org",
    "guarded_approve",
    "require",
    "require_on_task",
    "review",
    "refusal",
    "review_modify",
    "task_org",
    "task_project",
]
