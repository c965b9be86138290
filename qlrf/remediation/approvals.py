"""Approval tasks: a patch plan's way from proposal through a human (or the policy) to execution.

States and the only legal moves::

    proposed ──> pending_approval ──> approved ──> running ──> succeeded | failed | rolled_back
        │               ├──────────> rejected
        │               └──────────> expired
        ├──> approved  (the gate allowed it without approval: approver "policy:auto")
        └──> rejected  (the gate denied it)

Anything else raises :class:`TaskStateError` naming the task, its state and the refused move.
Callers that must tell refusals apart (the HTTP API's status codes) catch its subclasses, never
the message: :class:`TaskNotFound`, :class:`PlanHashMismatch`, :class:`SelfApprovalRefused`,
:class:`ApprovalExpired`.

* ``propose(plan, requested_by, decision)`` stores the sealed plan (YAML) and the gate decision
  (``Decision.as_dict()``: allow, requires_approval, deny, approval_reasons, input, ...):
  ``requires_approval`` (and not yet allowed) -> pending_approval, expiring after ``approval_ttl``
  (24 h); ``allow`` -> approved by ``policy:auto``; otherwise -> rejected with the deny reasons.
  Idempotent on the plan hash: proposing the same content again returns the existing task, whatever
  its state. The task id is derived from the plan hash (``task-<16 hex>``).
* ``approve``/``reject``/``modify`` are bound to the plan hash: the caller passes the hash it
  reviewed, and a different one is refused. The approver must not be the requester, must be named
  and must give a reason. A pending task past its expiry is expired on the spot and refused.
* ``modify`` rejects the old task ("superseded by <new id>") and proposes the edited plan as a new
  pending task (new hash, ``supersedes`` = old id, requested by the editor, who therefore cannot
  approve it).
* ``start`` (approved -> running) succeeds exactly once per task: two executors racing for the same
  task get one ``Task`` and one ``TaskStateError``.

Identities (requester, approver, editor) are normalised before they are compared or stored
(:func:`normalise_identity`: strip, NFKC, casefold), so ``Alice@Example.com`` approving a plan
requested by ``alice@example.com`` is self-approval.

Time is the database's (:func:`qlrf.db.db_now`, read in the transaction that uses it): no method
takes a per-call ``now``, so a caller cannot approve an expired task by claiming an earlier time.
Tests set time through the constructor (``clock=``) and nowhere else.

An approved (or running, finished) task is only as good as its approval record:
:meth:`TaskStore.approval_problem` says why a task has no authentic ``approval`` record in the log
for its plan hash (the executor refuses such a task before any driver call) and
:meth:`TaskStore.task_problems` lists every such task for ``qlrf audit verify``.

Two kinds of task share these states, rules and expiry (column ``kind``):

* ``patch_plan`` (the default): the document is a sealed :class:`PatchPlan` (YAML); execution jobs
  run it once approved.
* ``ai_task``: an AI task of a type that maps to no patch plan (``rebuild_image``, ``dr_drill``...):
  the document is the sealed TaskSpec as JSON and ``plan_hash`` is its content hash, so approvals bind
  to it exactly as to a plan. Proposed with :meth:`TaskStore.propose_ai_task` (always pending
  approval). No executor exists for these task types yet (issue 13 brings DR drills):
  :meth:`Task.plan` refuses them by name, :meth:`TaskStore.approved_waiting` leaves them out, so
  the approval sensor never launches one. The store never imports ``qlrf.ai`` (data flows from
  remediation to ai): it keeps the spec as :class:`AiTaskDocument` and checks its hash as JSON.
* ``dr_drill``: a disaster-recovery drill plan (``qlrf.dr.plans.DrillPlan``, sealed) as JSON, its
  content hash the task's ``plan_hash``. Proposed with :meth:`TaskStore.propose_drill`, which settles
  it by the ``dr`` policy's decision like a patch plan (allowed: approved by ``policy:auto``; needs
  approval: pending; denied: rejected). The drill runner (qlrf.dr) starts and finishes it; an
  approval is used once: a finished drill task is not run again (re-seal the plan for a new one).

Every state change appends an audit record when an :class:`~qlrf.remediation.audit.AuditLog` is given
(subject = task id; actor and reason in the record). When the log uses the same database, the
record is written in the same transaction as the state change.
"""

from __future__ import annotations

import builtins
import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from qlrf.db import db_now, engine_for, read_tx, tasks, utc, write_tx
from qlrf.remediation.audit import AuditLog, AuditRecord, canonical_json
from qlrf.remediation.plans import PatchPlan, parse_plan, sealed_hash
from qlrf.tenancy.scope import UNASSIGNED, check_org, current_scope, write_org, writing_org

STATES: tuple[str, ...] = (
    "proposed",
    "pending_approval",
    "approved",
    "rejected",
    "expired",
    "running",
    "paused",
    "succeeded",
    "failed",
    "rolled_back",
)
TRANSITIONS: dict[str, frozenset[str]] = {
    "proposed": frozenset({"pending_approval", "approved", "rejected"}),
    "pending_approval": frozenset({"approved", "rejected", "expired"}),
    "approved": frozenset({"running"}),
    "running": frozenset({"succeeded", "failed", "rolled_back", "paused"}),
    # paused: an inconclusive canary analysis stopped the plan after a healthy wave; nothing further
    # changed. An approver (never the requester) continues it or has it rolled back: both go back
    # through approved, so the execution sensor and the gate handle them like any approved run.
    "paused": frozenset({"approved"}),
    "rejected": frozenset(),
    "expired": frozenset(),
    "succeeded": frozenset(),
    "failed": frozenset(),
    "rolled_back": frozenset(),
}
TERMINAL: frozenset[str] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
FINISH_STATES: frozenset[str] = TRANSITIONS["running"]
APPROVED_STATES: frozenset[str] = frozenset({"approved", "running"}) | FINISH_STATES  # passed an approval
PAUSED_CHOICES: tuple[str, ...] = ("continue", "rollback")  # what an approver decides for a paused plan
AUTO_APPROVER = "policy:auto"
POLICY_ACTOR = "policy:gate"
EXPIRY_ACTOR = "system:expiry"
PATCH_PLAN = "patch_plan"
AI_TASK = "ai_task"
DR_DRILL = "dr_drill"
KINDS: tuple[str, ...] = (PATCH_PLAN, AI_TASK, DR_DRILL)
ANY_SCOPE = "*"  # environment/platform of an AI task whose scope names none (every one is in scope)
NO_EXECUTOR = "no executor for AI task type {task_type!r} yet (issue 13 brings DR drills): it can be approved or rejected, not run"
QUEUE_ACTOR = "policy:queue"  # supersedes an older pending plan of the same scope; displaces an outranked one
CANARY_ACTOR = "policy:canary"  # records a canary-only run's verdict (and rejects a failed canary's plan)


class TaskStateError(ValueError):
    """A refused operation on a task (illegal move, wrong plan hash, self-approval, expired...)."""


class TaskNotFound(TaskStateError, LookupError):
    """No task with that id."""


class PlanHashMismatch(TaskStateError):
    """The caller reviewed another version of the plan than the one the task holds."""


class SelfApprovalRefused(TaskStateError, PermissionError):
    """The requester of a task tried to approve (or reject) it."""


class EvidenceRefused(TaskStateError):
    """A Terraform-managed plan's approval without the sha256 of its accepted terraform plan file."""


class ApprovalExpired(TaskStateError):
    """The task's approval window closed before the decision arrived (the task is now expired)."""


def check_transition(current: str, new: str, task_id: str = "?") -> None:
    if new not in TRANSITIONS:
        raise TaskStateError(f"task {task_id}: unknown state {new!r} (states: {', '.join(STATES)})")
    if new not in TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none: it is final"
        raise TaskStateError(f"task {task_id}: illegal transition {current} -> {new} (allowed from {current}: {allowed})")


@dataclass(frozen=True)
class Task:
    id: str
    plan_hash: str
    plan_yaml: str
    state: str
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
    decision: dict = field(default_factory=dict)
    supersedes: str | None = None
    plan_id: str = ""
    kind: str = PATCH_PLAN
    org: str = UNASSIGNED  # the tenant (issue 14): the plan's metadata.org, else unassigned

    @property
    def task_type(self) -> str:
        """``patch`` for a patch plan; an AI task's own type (``rebuild_image``, ``dr_drill``...)."""
        if self.kind == DR_DRILL:
            return DR_DRILL
        if self.kind != AI_TASK:
            return "patch"
        return str(json.loads(self.plan_yaml).get("task_type", "?"))

    def plan(self) -> PatchPlan:
        """The stored plan, re-validated; its content hash is checked against the stored one."""
        if self.kind == DR_DRILL:
            raise TaskStateError(f"task {self.id} is a drill plan, not a patch plan: the drill runner (qlrf.dr) runs it")
        if self.kind != PATCH_PLAN:
            raise TaskStateError(f"task {self.id} is an {self.kind}, not a patch plan: "
                                 + NO_EXECUTOR.format(task_type=self.task_type))
        plan = parse_plan(self.plan_yaml, f"task {self.id}")
        if plan.content_hash != self.plan_hash:
            raise TaskStateError(f"task {self.id}: stored plan hash {plan.content_hash} is not the task's {self.plan_hash}")
        return plan

    def spec_document(self) -> dict:
        """An AI task's sealed spec or a drill plan (JSON object), its content hash checked against the task's."""
        if self.kind not in (AI_TASK, DR_DRILL):
            raise TaskStateError(f"task {self.id} is a {self.kind}: it has no AI task spec")
        doc = json.loads(self.plan_yaml)
        if doc.get("content_hash") != self.plan_hash or sealed_hash(doc) != self.plan_hash:
            raise TaskStateError(f"task {self.id}: stored spec does not hash to the task's {self.plan_hash}")
        return doc

    def is_expired(self, now: datetime) -> bool:
        return self.state == "pending_approval" and self.expires_at is not None and self.expires_at <= utc(now)

    def to_dict(self) -> dict:
        out = asdict(self)
        for key in ("created_at", "updated_at", "expires_at"):
            out[key] = out[key].isoformat() if out[key] else None
        return out


def checked_hash(document: Mapping[str, Any], what: str) -> str:
    """A sealed JSON document's claimed content hash, refused unless its content hashes to it."""
    claimed = document.get("content_hash")
    if not isinstance(claimed, str) or claimed != sealed_hash(document):
        raise TaskStateError(f"{what}'s content_hash does not match its content (unsealed or edited?)")
    return claimed


@dataclass(frozen=True)
class AiTaskDocument:
    """What the store keeps of a sealed AI TaskSpec (built by ``qlrf.ai``; see the module docstring)."""

    document: Mapping[str, Any]  # the sealed spec as JSON (``TaskSpec.model_dump(mode="json")``)
    task_type: str
    environment: str | None
    platform: str | None
    site: str | None
    risk_level: str
    autonomy_mode: str
    targets: int

    @property
    def content_hash(self) -> str:
        return checked_hash(self.document, "the AI task spec")

    @property
    def plan_id(self) -> str:
        return f"ai-{self.task_type}-{self.content_hash.split(':', 1)[-1][:12]}"


@dataclass(frozen=True)
class DrillDocument:
    """What the store keeps of a sealed drill plan (built by ``qlrf.dr``, which imports this module)."""

    document: Mapping[str, Any]  # the sealed plan as JSON (``DrillPlan.sealed().model_dump(mode="json")``)
    plan_id: str
    environment: str
    platform: str
    site: str | None
    risk_level: str
    autonomy_mode: str
    targets: int

    @property
    def content_hash(self) -> str:
        return checked_hash(self.document, "the drill plan")


def task_id_for(plan_hash: str) -> str:
    return "task-" + plan_hash.split(":", 1)[-1][:16]


def _decision_dict(decision: Any) -> dict:
    if hasattr(decision, "as_dict"):
        decision = decision.as_dict()
    if not isinstance(decision, Mapping):
        raise TaskStateError(f"decision must be the gate decision as a dict, got {type(decision).__name__}")
    return json.loads(canonical_json(json.loads(json.dumps(dict(decision), default=str))))


def _reasons(decision: Mapping, key: str) -> list[str]:
    value = decision.get(key) or []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _row_task(row: Any) -> Task:
    return Task(
        id=row.id,
        plan_hash=row.plan_hash,
        plan_yaml=row.plan_yaml,
        state=row.state,
        environment=row.environment,
        platform=row.platform,
        site=row.site,
        risk_level=row.risk_level,
        autonomy_mode=row.autonomy_mode,
        requested_by=row.requested_by,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
        expires_at=utc(row.expires_at),
        approver=row.approver,
        reason=row.reason,
        decision=json.loads(row.decision),
        supersedes=row.supersedes,
        plan_id=row.plan_id,
        kind=row.kind or PATCH_PLAN,
        org=getattr(row, "org", None) or UNASSIGNED,
    )


def normalise_identity(value: str) -> str:
    """The comparable form of a person or system name: stripped, NFKC-normalised, casefolded.

    Why: identities arrive typed by people (``Alice@Example.com``, full-width letters, trailing
    spaces); compared raw, one person could pass as two and approve their own plan.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return folded.strip()


def _named(value: str | None, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TaskStateError(f"{what} must be given")
    return value.strip()


def _identity(value: str | None, what: str) -> str:
    name = normalise_identity(_named(value, what))
    if not name:
        raise TaskStateError(f"{what} must be given")
    return name


class TaskStore:
    """Approval tasks in the database `engine_for(url)` picks (SQLite by default, Postgres by env)."""

    def __init__(
        self,
        url: str | None = None,
        audit: AuditLog | None = None,
        approval_ttl: timedelta = timedelta(hours=24),
        clock: Callable[[], datetime] | None = None,
        on_change: Iterable[Callable[[Connection, str, str, str, dict], None]] = (),
    ):
        self.engine = engine_for(url)
        # Called with the write connection of every audited change (kind, actor, subject, data), inside
        # its transaction: the event outbox (qlrf.events) hooks in here, so a rolled-back change emits nothing.
        self.on_change = tuple(on_change)
        self.audit = audit
        self.approval_ttl = approval_ttl
        # None (the default): the database clock. A clock here is for tests only: it is the one way
        # to move time, and it is fixed when the store is built, never per call.
        self.clock = clock

    def _now(self, conn: Connection) -> datetime:
        return utc(self.clock()) if self.clock is not None else db_now(conn)

    # --- plumbing ----------------------------------------------------------------------------------

    def _write(self):
        return _Change(self)

    def _load(self, conn: Connection, task_id: str, for_update: bool = False) -> Task:
        query = select(tasks).where(tasks.c.id == task_id)
        if for_update and conn.dialect.name != "sqlite":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            raise TaskNotFound(f"no task {task_id!r}")
        return _row_task(row)

    def _move(
        self,
        change: _Change,
        task: Task,
        new: str,
        *,
        actor: str,
        kind: str,
        reason: str | None,
        now: datetime,
        data: Mapping | None = None,
        approver: str | None = None,
        set_approver: bool = False,
    ) -> Task:
        check_transition(task.state, new, task.id)
        values: dict[str, Any] = {"state": new, "updated_at": now, "reason": reason}
        if set_approver:
            values["approver"] = approver
        result = change.conn.execute(
            update(tasks).where(tasks.c.id == task.id, tasks.c.state == task.state).values(**values)
        )
        if result.rowcount != 1:  # someone moved it first
            current = self._load(change.conn, task.id)
            raise TaskStateError(f"task {task.id}: was {task.state}, is now {current.state}; {task.state} -> {new} refused")
        record = {"task_id": task.id, "plan_hash": task.plan_hash, "from": task.state, "to": new, "reason": reason}
        if set_approver:
            record["approver"] = approver
        record.update(data or {})
        change.record(kind, actor, task.id, record)
        return self._load(change.conn, task.id)

    # --- queries -----------------------------------------------------------------------------------

    def get(self, task_id: str) -> Task:
        """The task; :class:`TaskNotFound` when there is none."""
        with read_tx(self.engine) as conn:
            return self._load(conn, task_id)

    def by_hash(self, plan_hash: str) -> Task | None:
        with read_tx(self.engine) as conn:
            row = conn.execute(select(tasks).where(tasks.c.plan_hash == plan_hash)).first()
        return _row_task(row) if row else None

    def list(
        self,
        states: str | Iterable[str] | None = None,
        environment: str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        orgs: Iterable[str] | None = None,
    ) -> builtins.list[Task]:
        """Tasks, oldest first, optionally only in `states` (one or several), one environment and
        `orgs` (a reader's organisations; None: every task).

        `limit`/`offset` page in the database, so a caller showing 50 tasks never loads every plan."""
        query = _filtered(select(tasks), states, environment, orgs).order_by(tasks.c.created_at, tasks.c.id)
        if limit is not None:
            query = query.limit(limit)
        if offset:
            query = query.offset(offset)
        with read_tx(self.engine) as conn:
            return [_row_task(r) for r in conn.execute(query).all()]

    def count(self, states: str | Iterable[str] | None = None, environment: str | None = None,
              orgs: Iterable[str] | None = None) -> int:
        """How many tasks :meth:`list` would return without a limit (the total behind a page)."""
        query = _filtered(select(func.count()).select_from(tasks), states, environment, orgs)
        with read_tx(self.engine) as conn:
            return int(conn.execute(query).scalar_one())

    def expiring_within(self, delta: timedelta) -> builtins.list[Task]:
        """Pending tasks that expire in (now, now + delta]: for "approval about to expire" alerts."""
        with read_tx(self.engine) as conn:
            now = self._now(conn)
            query = (
                select(tasks)
                .where(tasks.c.state == "pending_approval", tasks.c.expires_at > now, tasks.c.expires_at <= now + delta)
                .order_by(tasks.c.expires_at, tasks.c.id)
            )
            return [_row_task(r) for r in conn.execute(query).all()]

    def approved_waiting(self, kinds: Iterable[str] = (PATCH_PLAN,)) -> builtins.list[Task]:
        """Approved tasks not yet started, oldest approval first: what the execution sensor launches.

        Only patch plans by default: an approved ``ai_task`` has no executor yet and must not be launched,
        nor a Terraform-managed plan (``spec.terraform``: a person applies its checked plan file)."""
        query = (select(tasks).where(tasks.c.state == "approved", tasks.c.kind.in_(builtins.list(kinds)))
                 .order_by(tasks.c.updated_at, tasks.c.id))
        with read_tx(self.engine) as conn:
            found = [_row_task(r) for r in conn.execute(query).all()]
        return [t for t in found if t.kind != PATCH_PLAN or "terraform:" not in t.plan_yaml or t.plan().spec.terraform is None]

    # --- proposing ---------------------------------------------------------------------------------

    def propose(
        self, plan: PatchPlan | str, requested_by: str, decision: Mapping | Any, *, supersede: Iterable[str] = (),
        displace: Iterable[str] = (),
    ) -> Task:
        """Store the sealed plan with the gate's decision (see the module docstring). Idempotent on the hash.

        `supersede`: pending tasks this plan replaces (the queue keeps one open plan per scope). When
        the new task is pending or approved, each of them still pending is rejected "superseded by
        <new id>" by ``policy:queue`` in the same transaction (audited); ``supersedes`` names the first.
        `displace`: pending tasks of other scopes this plan outranks in a full queue (the policy's
        ``queue.max_pending``): when the new task is pending, each is rejected "deferred: outranked by
        <new id>" by ``policy:queue`` in the same transaction (audited).
        """
        requested_by = _identity(requested_by, "requested_by")
        sealed = _sealed(plan)
        existing = self.by_hash(sealed.content_hash)
        if existing is not None:
            return existing
        decision = _decision_dict(decision)
        replaced = [t for t in dict.fromkeys(supersede) if t != task_id_for(sealed.content_hash)]
        try:
            with self._write() as change:
                now = self._now(change.conn)
                task = self._insert(change, sealed, requested_by, decision, now, supersedes=replaced[0] if replaced else None)
                if task.state in ("pending_approval", "approved"):
                    for old_id in replaced:
                        self._supersede(change, old_id, task, now)
                if task.state == "pending_approval":
                    for old_id in dict.fromkeys(displace):
                        self._supersede(change, old_id, task, now, why="deferred: outranked by", key="outranked_by")
        except IntegrityError:  # a concurrent propose of the same plan won
            found = self.by_hash(sealed.content_hash)
            if found is None:
                raise
            return found
        return task

    def propose_ai_task(self, spec: AiTaskDocument, requested_by: str, decision: Mapping | Any,
                        *, supersedes: str | None = None) -> Task:
        """Store a sealed AI task spec as pending approval, whatever the decision allows (idempotent on the hash).

        The caller refuses denied specs before this (a refused intent writes no task); a decision that
        denies anyway rejects the task, as for a plan. An AI task never starts approved: it waits for a human.
        """
        requested_by = _identity(requested_by, "requested_by")
        existing = self.by_hash(spec.content_hash)
        if existing is not None:
            return existing
        stored = _decision_dict(decision)
        if not _reasons(stored, "deny"):
            stored = {**stored, "allow": False, "requires_approval": True,
                      "approval_reasons": _reasons(stored, "approval_reasons") or ["AI tasks wait for a human"]}
        try:
            with self._write() as change:
                return self._insert_ai(change, spec, requested_by, stored, self._now(change.conn), supersedes)
        except IntegrityError:
            found = self.by_hash(spec.content_hash)
            if found is None:
                raise
            return found

    def propose_drill(self, drill: DrillDocument, requested_by: str, decision: Mapping | Any) -> Task:
        """Store a sealed drill plan settled by the ``dr`` policy's decision (idempotent on the hash)."""
        requested_by = _identity(requested_by, "requested_by")
        existing = self.by_hash(drill.content_hash)
        if existing is not None:
            return existing
        stored = _decision_dict(decision)
        try:
            with self._write() as change:
                now = self._now(change.conn)
                task_id = task_id_for(drill.content_hash)
                self._insert_row(change, task_id=task_id, plan_hash=drill.content_hash, plan_id=drill.plan_id,
                                 document=canonical_json(dict(drill.document)), kind=DR_DRILL,
                                 environment=drill.environment, platform=drill.platform, site=drill.site,
                                 risk_level=drill.risk_level, autonomy_mode=drill.autonomy_mode,
                                 requested_by=requested_by, decision=stored, now=now, supersedes=None)
                change.record("drill_proposed", requested_by, task_id, {
                    "task_id": task_id, "plan_id": drill.plan_id, "plan_hash": drill.content_hash,
                    "environment": drill.environment, "platform": drill.platform, "site": drill.site,
                    "risk_level": drill.risk_level, "autonomy_mode": drill.autonomy_mode, "targets": drill.targets,
                })
                return self._settle(change, task_id, drill.content_hash, stored, now, force_pending=False)
        except IntegrityError:
            found = self.by_hash(drill.content_hash)
            if found is None:
                raise
            return found

    def _insert_ai(self, change: _Change, spec: AiTaskDocument, requested_by: str, decision: dict, now: datetime,
                   supersedes: str | None) -> Task:
        task_id = task_id_for(spec.content_hash)
        self._insert_row(change, task_id=task_id, plan_hash=spec.content_hash, plan_id=spec.plan_id,
                         document=canonical_json(dict(spec.document)), kind=AI_TASK,
                         environment=spec.environment or ANY_SCOPE, platform=spec.platform or ANY_SCOPE, site=spec.site,
                         risk_level=spec.risk_level, autonomy_mode=spec.autonomy_mode, requested_by=requested_by,
                         decision=decision, now=now, supersedes=supersedes)
        change.record("ai_task_proposed", requested_by, task_id, {
            "task_id": task_id, "plan_id": spec.plan_id, "plan_hash": spec.content_hash, "task_type": spec.task_type,
            "environment": spec.environment, "platform": spec.platform, "site": spec.site,
            "risk_level": spec.risk_level, "autonomy_mode": spec.autonomy_mode, "targets": spec.targets,
            "supersedes": supersedes,
        })
        return self._settle(change, task_id, spec.content_hash, decision, now, force_pending=not _reasons(decision, "deny"))

    def _supersede(self, change: _Change, old_id: str, new: Task, now: datetime, *,
                   why: str = "superseded by", key: str = "superseded_by") -> None:
        old = self._load(change.conn, old_id, for_update=True)
        if old.state != "pending_approval":
            return  # decided meanwhile: nothing to supersede
        self._move(change, old, "rejected", actor=QUEUE_ACTOR, kind="rejection", reason=f"{why} {new.id}",
                   now=now, approver=QUEUE_ACTOR, set_approver=True,
                   data={key: new.id, "new_plan_hash": new.plan_hash,
                         "scope": {"site": old.site, "environment": old.environment, "platform": old.platform}})

    def _insert(
        self,
        change: _Change,
        plan: PatchPlan,
        requested_by: str,
        decision: dict,
        now: datetime,
        supersedes: str | None,
        force_pending: bool = False,
    ) -> Task:
        meta = plan.metadata
        task_id = task_id_for(plan.content_hash)
        self._insert_row(change, task_id=task_id, plan_hash=plan.content_hash, plan_id=meta.id, document=plan.to_yaml(hash_checked=True),
                         kind=PATCH_PLAN, org=getattr(meta, "org", None) or UNASSIGNED,
                         environment=meta.environment, platform=meta.platform, site=meta.site,
                         risk_level=meta.risk_level, autonomy_mode=meta.autonomy_mode, requested_by=requested_by,
                         decision=decision, now=now, supersedes=supersedes)
        change.record(
            "plan_proposed",
            requested_by,
            task_id,
            {
                "task_id": task_id,
                "plan_id": meta.id,
                "plan_hash": plan.content_hash,
                "environment": meta.environment,
                "platform": meta.platform,
                "site": meta.site,
                "risk_level": meta.risk_level,
                "autonomy_mode": meta.autonomy_mode,
                "targets": plan.spec.targets.count(),
                "waves": len(plan.spec.waves),
                "finding": dict(meta.finding),
                "supersedes": supersedes,
            },
        )
        return self._settle(change, task_id, plan.content_hash, decision, now, force_pending)

    def _insert_row(self, change: _Change, *, task_id: str, plan_hash: str, plan_id: str, document: str, kind: str,
                    environment: str, platform: str, site: str | None, risk_level: str, autonomy_mode: str,
                    requested_by: str, decision: dict, now: datetime, supersedes: str | None,
                    org: str | None = None) -> None:
        """`org`: the plan's organisation (metadata.org); None: the writer's (qlrf.tenancy.scope.write_org)."""
        change.conn.execute(
            insert(tasks).values(
                id=task_id,
                plan_hash=plan_hash,
                plan_id=plan_id,
                plan_yaml=document,
                state="proposed",
                environment=environment,
                platform=platform,
                site=site,
                risk_level=risk_level,
                autonomy_mode=autonomy_mode,
                requested_by=requested_by,
                created_at=now,
                updated_at=now,
                expires_at=None,
                approver=None,
                reason=None,
                decision=canonical_json(decision),
                supersedes=supersedes,
                kind=kind,
                org=check_org(org) if org is not None else write_org(),
            )
        )

    def _settle(self, change: _Change, task_id: str, plan_hash: str, decision: dict, now: datetime,
                force_pending: bool) -> Task:
        """Record the policy decision and move the new task to pending_approval, approved or rejected."""
        change.record(
            "policy_decision",
            POLICY_ACTOR,
            task_id,
            {
                "task_id": task_id,
                "plan_hash": plan_hash,
                "input": decision.get("input"),
                "decision": {k: v for k, v in decision.items() if k != "input"},
            },
        )
        task = self._load(change.conn, task_id)
        allow = decision.get("allow") is True
        needs = decision.get("requires_approval") is True
        if force_pending or (needs and not allow):
            reasons = _reasons(decision, "approval_reasons") or ["approval required"]
            change.conn.execute(update(tasks).where(tasks.c.id == task_id).values(expires_at=now + self.approval_ttl))
            task = self._load(change.conn, task_id)
            return self._move(
                change, task, "pending_approval", actor=POLICY_ACTOR, kind="approval_requested",
                reason="; ".join(reasons), now=now,
                data={"expires_at": (now + self.approval_ttl).isoformat()},
            )
        if allow:
            return self._move(
                change, task, "approved", actor=AUTO_APPROVER, kind="approval",
                reason="allowed by policy without approval", now=now, approver=AUTO_APPROVER, set_approver=True,
            )
        reasons = _reasons(decision, "deny") or ["denied by policy"]
        return self._move(
            change, task, "rejected", actor=POLICY_ACTOR, kind="rejection", reason="; ".join(reasons), now=now,
            approver=POLICY_ACTOR, set_approver=True,
        )

    # --- human decisions ---------------------------------------------------------------------------

    def _reviewable(self, change: _Change, task_id: str, plan_hash: str, approver: str, now: datetime, what: str) -> Task:
        task = self._load(change.conn, task_id, for_update=True)
        if plan_hash != task.plan_hash:
            raise PlanHashMismatch(
                f"task {task_id}: {what} is bound to plan hash {task.plan_hash}, got {plan_hash}: "
                "review the current plan and pass its hash"
            )
        if approver == normalise_identity(task.requested_by):
            raise SelfApprovalRefused(f"task {task_id}: self-approval refused: {approver} requested this plan")
        if task.state == "pending_approval" and task.expires_at is not None and task.expires_at <= now:
            raise _Expired(task)
        if task.state != "pending_approval":
            raise TaskStateError(f"task {task_id}: is {task.state}, not pending_approval: cannot {what}")
        return task

    def _evidence(self, task_id: str, plan_hash: str, evidence_hash: str | None) -> dict | None:
        """For a Terraform-managed plan: the accepted evidence the approval must name (EvidenceRefused otherwise)."""
        task = self.get(task_id)
        if task.kind != PATCH_PLAN or task.plan_hash != plan_hash or task.plan().spec.terraform is None:
            if evidence_hash is not None:
                raise EvidenceRefused(f"task {task_id}: is not Terraform-managed: it takes no evidence hash")
            return None
        from qlrf.remediation.tf_evidence import accepted_evidence  # the evidence lives in the audit log

        accepted = accepted_evidence(self.audit, task_id, plan_hash)
        if accepted is None:
            raise EvidenceRefused(f"task {task_id}: Terraform-managed: record an accepted terraform plan file first "
                                  f"(`qlrf plan evidence {task_id} PLAN.json`)")
        if evidence_hash != accepted["evidence_sha256"]:
            raise EvidenceRefused(f"task {task_id}: the approval must name the accepted terraform plan file "
                                  f"{accepted['evidence_sha256']}, got {evidence_hash}: a different file is not the one checked")
        return {"evidence_sha256": accepted["evidence_sha256"], "evidence_file": accepted.get("file")}

    def _decide(self, task_id: str, plan_hash: str, approver: str, reason: str, new: str,
                evidence_hash: str | None = None) -> Task:
        approver = _identity(approver, "approver")
        reason = _named(reason, "reason")
        what = "approval" if new == "approved" else "rejection"
        evidence = self._evidence(task_id, plan_hash, evidence_hash) if new == "approved" else None
        try:
            with self._write() as change:
                now = self._now(change.conn)
                task = self._reviewable(change, task_id, plan_hash, approver, now, what)
                return self._move(
                    change, task, new, actor=approver, kind=what, reason=reason, now=now, approver=approver, set_approver=True,
                    data=evidence,
                )
        except _Expired as exc:
            self._expire_one(exc.task.id)
            raise ApprovalExpired(f"task {task_id}: approval expired at {exc.task.expires_at.isoformat()}: {what} refused") from None

    def approve(self, task_id: str, plan_hash: str, approver: str, reason: str, *, evidence_hash: str | None = None) -> Task:
        """Approve the plan hash; a Terraform-managed plan also needs ``evidence_hash``, the sha256 of its
        accepted `terraform show -json` file (:mod:`qlrf.remediation.tf_evidence`)."""
        return self._decide(task_id, plan_hash, approver, reason, "approved", evidence_hash)

    def reject(self, task_id: str, plan_hash: str, approver: str, reason: str) -> Task:
        return self._decide(task_id, plan_hash, approver, reason, "rejected")

    def modify(
        self,
        task_id: str,
        plan_hash: str,
        new_plan: PatchPlan | str | AiTaskDocument,
        editor: str,
        reason: str,
        *,
        decision: Mapping | Any | None = None,
    ) -> Task:
        """Replace a pending plan by an edited one; the new task needs a new approval (not by `editor`).

        `decision`: the gate's decision for the new plan, kept with the task for reviewers (the
        task is pending approval whatever it says).
        """
        editor = _identity(editor, "editor")
        reason = _named(reason, "reason")
        sealed = new_plan if isinstance(new_plan, AiTaskDocument) else _sealed(new_plan)
        new_kind = AI_TASK if isinstance(sealed, AiTaskDocument) else PATCH_PLAN
        if sealed.content_hash == plan_hash:
            raise TaskStateError(f"task {task_id}: the modified plan is identical to the current one (hash {plan_hash})")
        if self.by_hash(sealed.content_hash) is not None:
            raise TaskStateError(f"task {task_id}: a task for plan hash {sealed.content_hash} exists already")
        base = {"allow": False, "requires_approval": True, "deny": [], "approval_reasons": [f"modified by {editor}: {reason}"]}
        stored = _decision_dict(decision) if decision is not None else base
        stored = {**stored, "modified_from": task_id}
        try:
            with self._write() as change:
                now = self._now(change.conn)
                old = self._load(change.conn, task_id, for_update=True)
                if plan_hash != old.plan_hash:
                    raise PlanHashMismatch(
                        f"task {task_id}: modification is bound to plan hash {old.plan_hash}, got {plan_hash}: "
                        "review the current plan and pass its hash"
                    )
                if old.state == "pending_approval" and old.expires_at is not None and old.expires_at <= now:
                    raise _Expired(old)
                if old.state != "pending_approval":
                    raise TaskStateError(f"task {task_id}: is {old.state}, not pending_approval: cannot modify")
                if old.kind != new_kind:
                    raise TaskStateError(f"task {task_id}: a {old.kind} task can only be replaced by another {old.kind} "
                                         f"task, not a {new_kind}")
                new_id = task_id_for(sealed.content_hash)
                change.record(
                    "modification",
                    editor,
                    task_id,
                    {"task_id": task_id, "plan_hash": old.plan_hash, "new_task_id": new_id, "new_plan_hash": sealed.content_hash,
                     "reason": reason},
                )
                self._move(change, old, "rejected", actor=editor, kind="rejection", reason=f"superseded by {new_id}",
                           now=now, approver=editor, set_approver=True, data={"modification_reason": reason})
                if isinstance(sealed, AiTaskDocument):
                    return self._insert_ai(change, sealed, editor, stored, now, supersedes=task_id)
                return self._insert(change, sealed, editor, stored, now, supersedes=task_id, force_pending=True)
        except _Expired as exc:
            self._expire_one(exc.task.id)
            raise ApprovalExpired(f"task {task_id}: approval expired at {exc.task.expires_at.isoformat()}: modification refused") from None

    # --- expiry ------------------------------------------------------------------------------------

    def _expire_one(self, task_id: str, actor: str = EXPIRY_ACTOR) -> Task | None:
        with self._write() as change:
            now = self._now(change.conn)
            task = self._load(change.conn, task_id, for_update=True)
            if task.state != "pending_approval" or task.expires_at is None or task.expires_at > now:
                return None
            return self._move(
                change, task, "expired", actor=actor, kind="expiry",
                reason=f"not approved within {self.approval_ttl} (expired at {task.expires_at.isoformat()})", now=now,
            )

    def expire_due(self, *, actor: str = EXPIRY_ACTOR) -> builtins.list[Task]:
        """Expire every pending task whose time is up; returns the tasks it expired."""
        with read_tx(self.engine) as conn:
            now = self._now(conn)
            query = (select(tasks.c.id).where(tasks.c.state == "pending_approval", tasks.c.expires_at <= now)
                     .order_by(tasks.c.expires_at))
            due = [r.id for r in conn.execute(query).all()]
        expired = []
        for task_id in due:
            task = self._expire_one(task_id, actor)
            if task is not None:
                expired.append(task)
        return expired

    # --- canary_only: the canary before the approval ----------------------------------------------

    def record_canary(self, task_id: str, plan_hash: str, verdict: Mapping[str, Any], *, actor: str = CANARY_ACTOR) -> Task:
        """Keep the canary-only run's verdict with the pending task (the approval card shows it).

        `verdict`: ``{"passed": bool, "state": ..., "reason": ..., "health": ...}``. Passed: the task
        stays pending, its decision gains ``canary``. Inconclusive (``"inconclusive": true``, a canary
        analysis without enough data): pending too, nothing rolled back, for the approver to decide
        (approving runs the canary wave again, with its analysis). Failed: the task is rejected ("canary failed:
        ..."): nobody should approve the later waves of a plan whose canary did not hold. Audited
        as ``canary_verdict``.
        """
        verdict = json.loads(canonical_json(json.loads(json.dumps(dict(verdict), default=str))))
        with self._write() as change:
            now = self._now(change.conn)
            task = self._load(change.conn, task_id, for_update=True)
            if plan_hash != task.plan_hash:
                raise TaskStateError(f"task {task_id}: the canary verdict is for plan {plan_hash}, the task's is {task.plan_hash}")
            if task.state != "pending_approval":
                raise TaskStateError(f"task {task_id}: is {task.state}, not pending_approval: canary verdict not recorded")
            if "canary" in task.decision:
                raise TaskStateError(f"task {task_id}: its canary verdict is recorded already")
            decision = {**task.decision, "canary": {**verdict, "at": now.isoformat()}}
            change.conn.execute(update(tasks).where(tasks.c.id == task_id).values(decision=canonical_json(decision)))
            change.record("canary_verdict", actor, task_id, {"task_id": task_id, "plan_hash": plan_hash, **verdict})
            task = self._load(change.conn, task_id)
            if verdict.get("passed") is True or verdict.get("inconclusive") is True:  # inconclusive: a person decides
                return task
            return self._move(change, task, "rejected", actor=actor, kind="rejection",
                              reason=f"canary failed: {verdict.get('reason') or verdict.get('state')}"[:2000],
                              now=now, approver=actor, set_approver=True)

    # --- execution ---------------------------------------------------------------------------------

    def start(self, task_id: str, *, actor: str = "executor") -> Task:
        """approved -> running; exactly one caller wins, and only with the approval record in the log."""
        unproven = self.approval_problem(self.get(task_id))
        if unproven:
            raise TaskStateError(f"{unproven}: refusing to start it")
        with self._write() as change:
            now = self._now(change.conn)
            task = self._load(change.conn, task_id, for_update=True)
            return self._move(change, task, "running", actor=actor, kind="execution_start", reason="execution started", now=now)

    def finish(self, task_id: str, state: str, reason: str, *, actor: str = "executor",
               next_wave: int | None = None) -> Task:
        """running -> succeeded | failed | rolled_back | paused (``next_wave``: where a continued run starts)."""
        if state not in FINISH_STATES:
            raise TaskStateError(f"task {task_id}: finish state must be one of {sorted(FINISH_STATES)}, got {state!r}")
        if (state == "paused") != (next_wave is not None):
            raise TaskStateError(f"task {task_id}: a paused task needs next_wave (and only a paused one)")
        reason = _named(reason, "reason")
        with self._write() as change:
            now = self._now(change.conn)
            task = self._load(change.conn, task_id, for_update=True)
            data = {"next_wave": next_wave} if next_wave is not None else None
            return self._move(change, task, state, actor=actor, kind="execution_end", reason=reason, now=now, data=data)

    def decide_paused(self, task_id: str, plan_hash: str, approver: str, reason: str, choice: str) -> Task:
        """paused -> approved, to ``continue`` from the next wave or to ``rollback`` every wave done.

        A decision like an approval: bound to the plan hash, never by the requester, audited as an
        ``approval`` record whose ``paused_choice`` and ``next_wave`` the execution reads back."""
        if choice not in PAUSED_CHOICES:
            raise TaskStateError(f"task {task_id}: choose one of {', '.join(PAUSED_CHOICES)}, not {choice!r}")
        approver = _identity(approver, "approver")
        reason = _named(reason, "reason")
        with self._write() as change:
            now = self._now(change.conn)
            task = self._load(change.conn, task_id, for_update=True)
            if plan_hash != task.plan_hash:
                raise PlanHashMismatch(f"task {task_id}: the decision is bound to plan hash {task.plan_hash}, got {plan_hash}")
            if approver == normalise_identity(task.requested_by):
                raise SelfApprovalRefused(f"task {task_id}: self-approval refused: {approver} requested this plan")
            if task.state != "paused":
                raise TaskStateError(f"task {task_id}: is {task.state}, not paused: nothing to continue or roll back")
            data = {"paused_choice": choice, "next_wave": self.paused_at(task_id)}
            return self._move(change, task, "approved", actor=approver, kind="approval", reason=reason, now=now,
                              approver=approver, set_approver=True, data=data)

    def paused_at(self, task_id: str) -> int | None:
        """The wave a continued run starts from: the ``next_wave`` of the task's last pause, if any."""
        if self.audit is None:
            return None
        ends = [r.data for r in self.audit.records(subject=task_id, kind="execution_end") if r.data.get("to") == "paused"]
        return ends[-1].get("next_wave") if ends else None

    def paused_choice(self, task: Task) -> tuple[str, int | None] | None:
        """(choice, next_wave) when `task` is approved by a decision on its pause (its latest approval)."""
        if self.audit is None or task.state != "approved":
            return None
        approvals = [r.data for r in self.audit.records(subject=task.id, kind="approval") if r.data.get("to") == "approved"]
        last = approvals[-1] if approvals else {}
        return (last["paused_choice"], last.get("next_wave")) if last.get("from") == "paused" else None


    # --- evidence ----------------------------------------------------------------------------------

    def approval_record(self, task: Task) -> AuditRecord | None:
        """The authentic ``approval`` record that moved `task` to approved for its plan hash, if any."""
        if self.audit is None:
            return None
        for record in self.audit.records(subject=task.id, kind="approval"):
            data = record.data
            if data.get("to") == "approved" and data.get("plan_hash") == task.plan_hash and self.audit.authentic(record):
                return record
        return None

    def approval_problem(self, task: Task) -> str | None:
        """Why `task` may not count as approved (None when its approval record is in the log)."""
        if task.state not in APPROVED_STATES:
            return None
        if self.audit is None:
            return f"task {task.id} is {task.state} but there is no audit log to prove its approval"
        if self.approval_record(task) is None:
            return f"task {task.id} is {task.state} but the audit log holds no approval of plan {task.plan_hash}"
        return None

    def task_problems(self) -> builtins.list[str]:
        """Every task that passed approval without an authentic approval record (``audit verify``)."""
        found = (self.approval_problem(task) for task in self.list(states=sorted(APPROVED_STATES)))
        return [problem for problem in found if problem]


def _filtered(query: Any, states: str | Iterable[str] | None, environment: str | None,
              orgs: Iterable[str] | None = None) -> Any:
    if states is not None:
        wanted = [states] if isinstance(states, str) else builtins.list(states)
        unknown = sorted(set(wanted) - set(STATES))
        if unknown:
            raise TaskStateError(f"unknown state(s) {unknown} (states: {', '.join(STATES)})")
        query = query.where(tasks.c.state.in_(wanted))
    if environment is not None:
        query = query.where(tasks.c.environment == environment)
    if orgs is not None:
        query = query.where(tasks.c.org.in_(builtins.list(orgs)))
    return query


class _Expired(Exception):
    def __init__(self, task: Task):
        super().__init__(task.id)
        self.task = task


def _sealed(plan: PatchPlan | str) -> PatchPlan:
    if isinstance(plan, str):
        plan = parse_plan(plan)
    if not isinstance(plan, PatchPlan):
        raise TaskStateError(f"expected a PatchPlan, got {type(plan).__name__}")
    computed = plan.compute_hash()  # once: for a plan of 11,000 targets a hash costs ~0.1 s
    if plan.content_hash is not None and plan.content_hash != computed:
        raise TaskStateError("the plan's content_hash does not match its content (edited after sealing?)")
    return plan if plan.content_hash == computed else plan.model_copy(update={"content_hash": computed})


class _Change:
    """One write transaction of a TaskStore, with its audit records.

    Same database as the audit log: the append lock is taken first and the records are written in
    the transaction. Another database: the records are appended once the change has committed.
    """

    def __init__(self, store: TaskStore):
        self.store = store
        self.shared = store.audit is not None and store.audit.engine is store.engine
        self.pending: builtins.list[tuple[str, str, str, dict, str | None]] = []
        self.appended: builtins.list[AuditRecord] = []
        self._tx = None
        self.conn: Connection | None = None

    def __enter__(self) -> _Change:
        self._tx = write_tx(self.store.engine)
        self.conn = self._tx.__enter__()
        if self.shared:  # lock order: audit heads (sorted), then task rows
            scope = current_scope()
            tenants = sorted(scope.orgs) if scope is not None and scope.system is None and scope.orgs else None
            # A caller of several orgs: every chain it may write (under RLS it may not touch unassigned).
            for org in tenants or [write_org()]:
                self.store.audit.lock(self.conn, org)
        return self

    def record(self, kind: str, actor: str, subject: str, data: dict) -> None:
        # Everything a task change writes (audit record, outbox event) belongs to the task's organisation.
        org = self.conn.execute(select(tasks.c.org).where(tasks.c.id == subject)).scalar()
        with writing_org(org):
            for hook in self.store.on_change:
                hook(self.conn, kind, actor, subject, data)
            if self.store.audit is None:
                return
            if self.shared:
                self.appended.append(self.store.audit.append_in(self.conn, kind, actor, subject, data, org=org))
            else:
                self.pending.append((kind, actor, subject, data, org))

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._tx.__exit__(exc_type, exc, tb)
        if exc_type is None:
            if self.appended:
                self.store.audit.publish(self.appended[-1])  # committed: move the anchored head
            for kind, actor, subject, data, org in self.pending:
                self.store.audit.append(kind, actor, subject, data, org=org)
        return False


__all__ = [
    "AI_TASK",
    "EvidenceRefused",
    "ANY_SCOPE",
    "APPROVED_STATES",
    "AiTaskDocument",
    "DR_DRILL",
    "DrillDocument",
    "KINDS",
    "PATCH_PLAN",
    "AUTO_APPROVER",
    "ApprovalExpired",
    "PlanHashMismatch",
    "STATES",
    "SelfApprovalRefused",
    "TERMINAL",
    "TRANSITIONS",
    "Task",
    "TaskNotFound",
    "TaskStateError",
    "TaskStore",
    "check_transition",
    "normalise_identity",
    "sealed_hash",
    "task_id_for",
]
