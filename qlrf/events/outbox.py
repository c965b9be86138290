"""The transactional outbox: events written in the same transaction as the change they describe.

Table ``rf_event_outbox`` lives in the task store / audit database (SQLite or Postgres, the same
``qlrf.db`` engine), declared on the shared ``metadata`` and created on first use by :class:`Outbox`.
``seq`` (autoincrement) is the relay's order; ``id`` (the CloudEvents id) is unique, so writing the
same change twice keeps one row. ``delivered_at``/``broker_seq`` are set only after the broker acked.

The task store emits through :func:`task_listener`: :class:`~qlrf.remediation.approvals.TaskStore`
calls its listeners with the write connection of every state change (``on_change=``), so a
rolled-back change rolls its event back with it. Sensors and assets that detect a breach in the
warehouse write with :meth:`Outbox.write` (their own short transaction; the ids are stable, so a
re-evaluated partition writes nothing new).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from qlrf.db import engine_for, metadata, org_column, read_tx, utc, write_tx
from qlrf.events.contract import Event, build

outbox_table = Table(
    "rf_event_outbox",
    metadata,
    Column("seq", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("type", String(128), nullable=False),
    Column("source", String(256), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("data", Text, nullable=False),
    Column("body", Text, nullable=False),  # the structured CloudEvent exactly as published (and replayed)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("broker_seq", BigInteger, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    org_column(),  # the writer's organisation (qlrf.tenancy.scope.write_org): RLS keeps tenants apart
)
Index("ix_rf_event_outbox_pending", outbox_table.c.delivered_at, outbox_table.c.seq)


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    event: Event
    created_at: datetime
    delivered_at: datetime | None
    broker_seq: int | None


def _row(r) -> OutboxRow:
    event = Event(r.id, r.type, r.source, r.subject, utc(r.time), json.loads(r.data), r.body.encode())
    return OutboxRow(r.seq, event, utc(r.created_at), utc(r.delivered_at), r.broker_seq)


class Outbox:
    """Events waiting for (or delivered to) the broker, in the task store's database."""

    def __init__(self, url: str | None = None, clock: Callable[[], datetime] | None = None):
        self.engine = engine_for(url)
        outbox_table.create(self.engine, checkfirst=True)
        self.clock = clock or (lambda: datetime.now(UTC))

    # --- writing -----------------------------------------------------------------------------------

    def write_in(self, conn: Connection, events: Iterable[Event]) -> int:
        """Insert `events` in the caller's transaction (duplicates by id are skipped); returns rows added."""
        added = 0
        now = self.clock()
        for event in events:
            if conn.execute(select(outbox_table.c.seq).where(outbox_table.c.id == event.id)).first() is not None:
                continue
            conn.execute(insert(outbox_table).values(
                id=event.id, type=event.type, source=event.source, subject=event.subject, time=event.time,
                data=json.dumps(event.data, sort_keys=True), body=event.to_json().decode(), created_at=now, attempts=0,
            ))
            added += 1
        return added

    def write(self, events: Iterable[Event]) -> int:
        """Insert `events` in a transaction of their own (warehouse-derived events)."""
        events = list(events)
        if not events:
            return 0
        try:
            with write_tx(self.engine) as conn:
                return self.write_in(conn, events)
        except IntegrityError:  # a concurrent writer stored the same ids first
            return 0

    # --- the relay's side --------------------------------------------------------------------------

    def pending(self, limit: int = 1000) -> list[OutboxRow]:
        """Undelivered events, oldest first (the relay's order, hence per-subject order)."""
        with read_tx(self.engine) as conn:
            rows = conn.execute(select(outbox_table).where(outbox_table.c.delivered_at.is_(None))
                                .order_by(outbox_table.c.seq).limit(limit)).all()
        return [_row(r) for r in rows]

    def mark_delivered(self, acks: Iterable[tuple[int, int]]) -> None:
        """Mark ``(outbox seq, broker seq)`` pairs delivered: called only with the broker's acks."""
        acks = list(acks)
        if not acks:
            return
        now = self.clock()
        stmt = (update(outbox_table).where(outbox_table.c.seq == bindparam("b_seq"))
                .values(delivered_at=now, broker_seq=bindparam("b_broker")))
        with write_tx(self.engine) as conn:
            conn.execute(stmt, [{"b_seq": seq, "b_broker": broker} for seq, broker in acks])

    def note_attempt(self, seqs: Iterable[int]) -> None:
        seqs = list(seqs)
        if seqs:
            with write_tx(self.engine) as conn:
                conn.execute(update(outbox_table).where(outbox_table.c.seq.in_(seqs))
                             .values(attempts=outbox_table.c.attempts + 1))

    def since(self, when: datetime, limit: int = 100_000) -> list[OutboxRow]:
        """Every event created at or after `when` (delivered or not), oldest first: ``qlrf events replay``."""
        with read_tx(self.engine) as conn:
            rows = conn.execute(select(outbox_table).where(outbox_table.c.created_at >= when)
                                .order_by(outbox_table.c.seq).limit(limit)).all()
        return [_row(r) for r in rows]

    def status(self, now: datetime | None = None) -> dict:
        """Counts and the lag: how many wait, and how old the oldest waiting event is (seconds)."""
        now = now or self.clock()
        with read_tx(self.engine) as conn:
            total = conn.execute(select(func.count()).select_from(outbox_table)).scalar_one()
            waiting = conn.execute(select(func.count()).select_from(outbox_table)
                                   .where(outbox_table.c.delivered_at.is_(None))).scalar_one()
            oldest = conn.execute(select(func.min(outbox_table.c.created_at))
                                  .where(outbox_table.c.delivered_at.is_(None))).scalar_one()
            last = conn.execute(select(func.max(outbox_table.c.delivered_at))).scalar_one()
            by_type = dict(conn.execute(select(outbox_table.c.type, func.count()).group_by(outbox_table.c.type)).all())
        lag = (now - utc(oldest)).total_seconds() if oldest is not None else 0.0
        return {"events": total, "pending": waiting, "delivered": total - waiting, "lag_seconds": round(max(lag, 0.0), 3),
                "last_delivered_at": utc(last).isoformat() if last else None, "by_type": by_type}


# --- the task store's events -------------------------------------------------------------------------

TASK_SOURCE = "tasks"
_TASK_TYPES = {("approval", "approved"): "task.approved", ("rejection", "rejected"): "task.rejected",
               ("expiry", "expired"): "task.expired", ("execution_end", "rolled_back"): "rollback.performed"}


def task_events(kind: str, actor: str, subject: str, data: dict, now: datetime) -> list[Event]:
    """The events one audited task change maps to (most changes map to none)."""
    if kind == "plan_proposed":
        fields = {k: data.get(k) for k in ("task_id", "plan_id", "plan_hash", "environment", "platform", "site",
                                           "risk_level", "autonomy_mode", "targets", "waves", "supersedes")}
        fields["requested_by"] = actor
        return [build("plan.proposed", key=data["plan_hash"], source=TASK_SOURCE, subject=f"task/{data['task_id']}",
                      data=fields, time=now)]
    short = _TASK_TYPES.get((kind, data.get("to")))
    if short is None:
        return []
    body = {"task_id": data["task_id"], "plan_hash": data["plan_hash"], "from": data.get("from"), "to": data["to"],
            "reason": data.get("reason"), "actor": actor}
    if short == "rollback.performed":
        body["reason"] = body["reason"] or "rolled back"
    key = f"{data['task_id']}|{data['to']}|{data['plan_hash']}"  # a task reaches a state at most once
    return [build(short, key=key, source=TASK_SOURCE, subject=f"task/{data['task_id']}", data=body, time=now)]


def task_listener(outbox: Outbox) -> Callable[[Connection, str, str, str, dict], None]:
    """A TaskStore ``on_change`` hook writing the change's events into `outbox` in the change's transaction."""

    def _on_change(conn: Connection, kind: str, actor: str, subject: str, data: dict) -> None:
        outbox.write_in(conn, task_events(kind, actor, subject, data, outbox.clock()))

    return _on_change
