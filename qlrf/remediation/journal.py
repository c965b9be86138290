"""The execution journal: every driver step of a plan's execution, written down before and after it
happens, in the task database, so a killed run can be resumed or rolled back by a fresh process.

Why a journal and not the driver's memory: a driver keeps what it needs to undo a plan (the launch
template version a group ran, the scale-set model, the instance template, the original VM) in
Python objects. A process killed mid-wave takes them with it, and the half-replaced group is left
for a human to untangle. Here every step is an *intent* row committed before the cloud call (what is
about to be called, on which resource, and the driver's checkpoint: everything a rollback needs)
and completed with its *result* after it. The newest checkpoint of a task is its rollback data; a
fresh driver loads it with ``restore``.

Table ``rf_execution_journal`` (same database and engine as the task store: SQLite embedded,
PostgreSQL in production; created with ``create(checkfirst=True)`` on first use, like the store's
tables), one row per step:

    task_id, plan_id, plan_hash   what is executed
    attempt                       one execution attempt (32 hex); its first row (seq 0, step
                                  ``attempt``) is open (status ``intent``) while the attempt runs
    seq                           order within the attempt
    step                          attempt | prepare | wave N run | chunk | health | rollback
    wave                          the wave index, where there is one
    status                        intent -> done | failed (``interrupted``: the attempt row of a run
                                  stopped by a signal)
    intent, result, checkpoint    JSON: the call about to be made; what came back; the driver state
    checkpoint_no                 the checkpoints' order within the attempt (a step's checkpoint is
                                  replaced by a newer one when the step ends, after later rows began)
    owner                         host:pid of the process that wrote the attempt (liveness)
    created_at, updated_at        the injected clock, else the database clock

An attempt is *unfinished* while its attempt row is still ``intent`` or ``interrupted``; it is
*abandoned* (safe to take over) when it was interrupted, when its owner is a process of this host
that no longer exists, or when nothing was written for ``stale_after`` seconds. Taking it over is a
conditional update (``status = 'intent'`` -> ``failed``): two recoverers racing get one winner.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from qlrf.db import db_now, engine_for, metadata, org_column, read_tx, tasks, utc, write_tx
from qlrf.tenancy.scope import write_org

INTENT, DONE, FAILED, INTERRUPTED = "intent", "done", "failed", "interrupted"
STATUSES = (INTENT, DONE, FAILED, INTERRUPTED)
ATTEMPT = "attempt"  # the step of an attempt's first row

journal_table = Table(
    "rf_execution_journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False),
    Column("plan_id", String(200), nullable=False),
    Column("plan_hash", String(80), nullable=False),
    Column("attempt", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("step", String(64), nullable=False),
    Column("wave", Integer),
    Column("status", String(16), nullable=False),
    Column("intent", Text, nullable=False),  # JSON
    Column("result", Text),  # JSON
    Column("checkpoint", Text),  # JSON: the driver's checkpoint() at this step
    Column("checkpoint_no", Integer),  # order of the checkpoints within the attempt (a step's is replaced when it ends)
    Column("owner", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    org_column(),  # the task's organisation (from the task row when the journal writes)
)
Index("ix_rf_journal_task", journal_table.c.task_id, journal_table.c.attempt, journal_table.c.seq, unique=True)


def _task_org(task_id: str) -> Any:
    """The journal row's organisation: its task's (a system-scoped executor still files it under the
    task's org), else the writer's."""
    return func.coalesce(select(tasks.c.org).where(tasks.c.id == task_id).scalar_subquery(), write_org())


class JournalError(RuntimeError):
    """The journal cannot support what was asked (no checkpoint to roll back from...); names the task."""


def _create(engine: Engine) -> None:
    """The table, once per engine: two processes creating it at once, one loses, retries, finds it."""
    if engine in _created:
        return
    for attempt in range(3):
        try:
            journal_table.create(engine, checkfirst=True)
            break
        except (IntegrityError, ProgrammingError, OperationalError):
            if attempt == 2:
                raise
    _created.add(engine)


_created: set[Engine] = set()


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def this_owner() -> str:
    """host:pid of this process: whoever finds the attempt later can tell whether its writer lives."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(owner: str) -> bool | None:
    """True/False when ``owner`` is a process of this host (alive or gone); None for another host."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Entry:
    """One journal row."""

    id: int
    task_id: str
    plan_id: str
    plan_hash: str
    attempt: str
    seq: int
    step: str
    wave: int | None
    status: str
    intent: Any
    result: Any
    checkpoint: Any
    checkpoint_no: int | None
    owner: str
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"attempt": self.attempt, "seq": self.seq, "step": self.step, "wave": self.wave, "status": self.status,
                "intent": self.intent, "result": self.result, "has_checkpoint": self.checkpoint is not None,
                "owner": self.owner, "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


def _entry(row: Any) -> Entry:
    return Entry(row.id, row.task_id, row.plan_id, row.plan_hash, row.attempt, row.seq, row.step, row.wave, row.status,
                 _load(row.intent), _load(row.result), _load(row.checkpoint), row.checkpoint_no, row.owner, utc(row.created_at),
                 utc(row.updated_at))


class ExecutionJournal:
    """The journal in the task database (``engine`` of the TaskStore, or ``engine_for(url)``).

    ``clock``: tests only (the TaskStore's clock); by default times come from the database clock.
    """

    def __init__(self, url: str | None = None, *, engine: Engine | None = None,
                 clock: Callable[[], datetime] | None = None):
        self.engine = engine or engine_for(url)
        self.clock = clock
        _create(self.engine)

    def _now(self, conn: Connection) -> datetime:
        return utc(self.clock()) if self.clock is not None else db_now(conn)

    # --- writing -----------------------------------------------------------------------------------

    def begin(self, task_id: str, plan_id: str, plan_hash: str, *, mode: str, actor: str,
              previous: str | None = None, owner: str | None = None) -> Attempt:
        """Open a new attempt (its attempt row, committed) and return it."""
        attempt = Attempt(self, task_id, plan_id, plan_hash, uuid.uuid4().hex, owner or this_owner())
        attempt.write(ATTEMPT, {"mode": mode, "actor": actor, "previous_attempt": previous}, seq=0)
        return attempt

    def take_over(self, entry: Entry, why: str) -> bool:
        """Mark an abandoned attempt failed; True for the one caller that did it."""
        with write_tx(self.engine) as conn:
            now = self._now(conn)
            done = conn.execute(
                update(journal_table)
                .where(journal_table.c.id == entry.id, journal_table.c.status.in_((INTENT, INTERRUPTED)))
                .values(status=FAILED, result=_json({"abandoned": why}), updated_at=now)
            )
        return done.rowcount == 1

    # --- reading -----------------------------------------------------------------------------------

    def entries(self, task_id: str, attempt: str | None = None) -> list[Entry]:
        """The task's rows, attempts in the order they began, steps in seq order."""
        query = select(journal_table).where(journal_table.c.task_id == task_id)
        if attempt is not None:
            query = query.where(journal_table.c.attempt == attempt)
        with read_tx(self.engine) as conn:
            rows = [_entry(r) for r in conn.execute(query.order_by(journal_table.c.id))]
        return rows

    def unfinished(self, task_id: str) -> Entry | None:
        """The attempt row of the task's newest attempt if it never finished, else None."""
        attempts = [e for e in self.entries(task_id) if e.step == ATTEMPT]
        if not attempts or attempts[-1].status not in (INTENT, INTERRUPTED):
            return None
        return attempts[-1]

    def last_write(self, task_id: str, attempt: str) -> datetime | None:
        with read_tx(self.engine) as conn:
            return utc(conn.execute(select(journal_table.c.updated_at).where(
                journal_table.c.task_id == task_id, journal_table.c.attempt == attempt,
            ).order_by(journal_table.c.updated_at.desc()).limit(1)).scalar())

    def abandoned(self, entry: Entry, stale_after: float) -> str | None:
        """Why the unfinished attempt ``entry`` may be taken over, or None while it may still run."""
        if entry.status == INTERRUPTED:
            return "the run was interrupted (signal)"
        alive = owner_alive(entry.owner)
        if alive is False:
            return f"its process {entry.owner} is gone"
        last = self.last_write(entry.task_id, entry.attempt) or entry.updated_at
        with read_tx(self.engine) as conn:
            idle = (self._now(conn) - last).total_seconds()
        if idle >= stale_after:
            return f"nothing journalled for {idle:.0f}s (stale after {stale_after:g}s)"
        return None

    def latest_checkpoint(self, task_id: str) -> tuple[dict[str, Any], Entry] | None:
        """The newest driver checkpoint of the task (any attempt) with the row that holds it."""
        saved = [e for e in self.entries(task_id) if e.checkpoint is not None]
        if not saved:
            return None
        order = list(dict.fromkeys(e.attempt for e in saved))  # attempts in the order they began
        newest = max(saved, key=lambda e: (order.index(e.attempt), e.checkpoint_no or 0))
        return newest.checkpoint, newest

    def waves_started(self, task_id: str) -> list[int]:
        """Waves any attempt began to run (a rollback must cover them all)."""
        return sorted({e.wave for e in self.entries(task_id) if e.step.endswith(" run") and e.wave is not None})

    def changed_anything(self, task_id: str) -> bool:
        """Whether any cloud call of the task was (or may have been) sent."""
        return any(e.step == "chunk" for e in self.entries(task_id))


class Attempt:
    """One execution attempt: writes its rows in order (each in its own committed transaction)."""

    def __init__(self, journal: ExecutionJournal, task_id: str, plan_id: str, plan_hash: str, attempt: str, owner: str):
        self.journal, self.task_id, self.plan_id, self.plan_hash = journal, task_id, plan_id, plan_hash
        self.id, self.owner = attempt, owner
        self._seq = 0
        self._checkpoints = 0

    def _checkpoint_no(self, checkpoint: Mapping[str, Any] | None) -> int | None:
        if checkpoint is None:
            return None
        self._checkpoints += 1
        return self._checkpoints

    def write(self, step: str, intent: Mapping[str, Any], *, wave: int | None = None, seq: int | None = None,
              checkpoint: Mapping[str, Any] | None = None, status: str = INTENT, result: Any = None) -> int:
        """Insert one row, committed before this returns (the intent is on disk before the call)."""
        if seq is None:
            self._seq += 1
            seq = self._seq
        with write_tx(self.journal.engine) as conn:
            now = self.journal._now(conn)
            row = conn.execute(insert(journal_table).values(
                task_id=self.task_id, plan_id=self.plan_id, plan_hash=self.plan_hash, attempt=self.id, seq=seq,
                step=step, wave=wave, status=status, intent=_json(dict(intent)),
                result=None if result is None else _json(result),
                checkpoint=None if checkpoint is None else _json(dict(checkpoint)),
                checkpoint_no=self._checkpoint_no(checkpoint), owner=self.owner,
                created_at=now, updated_at=now, org=_task_org(self.task_id)))
            return int(row.inserted_primary_key[0])

    def complete(self, row_id: int, status: str, result: Any = None, checkpoint: Mapping[str, Any] | None = None) -> None:
        """The step's outcome, after the call (done | failed | interrupted)."""
        if status not in STATUSES:
            raise ValueError(f"journal status must be one of {STATUSES}, got {status!r}")
        values: dict[str, Any] = {"status": status, "result": None if result is None else _json(result)}
        if checkpoint is not None:
            values["checkpoint"] = _json(dict(checkpoint))
            values["checkpoint_no"] = self._checkpoint_no(checkpoint)
        with write_tx(self.journal.engine) as conn:
            values["updated_at"] = self.journal._now(conn)
            conn.execute(update(journal_table).where(journal_table.c.id == row_id).values(**values))

    def finish(self, status: str, result: Any) -> None:
        """Close the attempt row (seq 0)."""
        with write_tx(self.journal.engine) as conn:
            now = self.journal._now(conn)
            conn.execute(update(journal_table).where(
                journal_table.c.attempt == self.id, journal_table.c.seq == 0,
            ).values(status=status, result=_json(result), updated_at=now))


def journal_lines(entries: list[Entry]) -> list[str]:
    """The journal as a person reads it: one line per step."""
    lines = []
    for e in entries:
        what = e.intent.get("call") if isinstance(e.intent, dict) else None
        if isinstance(what, dict):
            what = f"{what.get('service')}.{what.get('operation')} {what.get('target')}"
        elif e.step == ATTEMPT:
            what = f"{e.intent.get('mode')} by {e.intent.get('actor')} ({e.owner})"
        result = "" if e.result is None else " -> " + json.dumps(e.result, default=str)[:160]
        mark = " +checkpoint" if e.checkpoint is not None else ""
        lines.append(f"{e.updated_at:%Y-%m-%dT%H:%M:%S} {e.attempt[:8]} #{e.seq:<3} {e.step:<12} {e.status:<11} "
                     f"{what or ''}{result}{mark}")
    return lines


__all__ = [
    "ATTEMPT",
    "Attempt",
    "DONE",
    "Entry",
    "ExecutionJournal",
    "FAILED",
    "INTENT",
    "INTERRUPTED",
    "JournalError",
    "journal_lines",
    "journal_table",
    "owner_alive",
    "this_owner",
]
