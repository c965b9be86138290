"""The event outbox on PostgreSQL: written in the task store's transaction, rolled back with it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qlrf.events.outbox import Outbox, task_listener
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from tests.remediation.support import PENDING, Clock, make_plan

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.postgres


def test_outbox_follows_the_task_transaction_on_postgres(pg_url):
    clock = Clock(T0)
    outbox = Outbox(pg_url, clock=clock)

    def boom(conn, kind, actor, subject, data):
        if kind == "rejection":
            raise RuntimeError("crash inside the change")

    store = TaskStore(pg_url, audit=AuditLog(pg_url), clock=clock, on_change=[task_listener(outbox), boom])
    task = store.propose(make_plan("pg1"), "sensor:drift", PENDING)
    clock.set(T0 + timedelta(minutes=1))
    store.approve(task.id, task.plan_hash, "alice", "ok")
    other = store.propose(make_plan("pg2"), "sensor:drift", PENDING)
    with pytest.raises(RuntimeError, match="crash"):
        store.reject(other.id, other.plan_hash, "bob", "no")
    rows = outbox.pending()
    assert [(r.event.short, r.event.subject) for r in rows] == [
        ("plan.proposed", f"task/{task.id}"), ("task.approved", f"task/{task.id}"), ("plan.proposed", f"task/{other.id}")]
    assert store.get(other.id).state == "pending_approval"
    outbox.mark_delivered([(rows[0].seq, 41), (rows[1].seq, 42)])
    assert outbox.status(now=T0 + timedelta(minutes=2))["pending"] == 1
    assert [r.broker_seq for r in outbox.since(T0)][:2] == [41, 42]
