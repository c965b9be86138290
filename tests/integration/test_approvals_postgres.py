"""The task store and the audit log on the machine's PostgreSQL: same behaviour, real concurrency."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from qlrf.db import engine_for
from qlrf.remediation.approvals import TaskStateError, TaskStore
from qlrf.remediation.audit import AuditLog
from tests.remediation.support import ALLOW, PENDING, Clock, make_plan, race

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)

pytestmark = pytest.mark.postgres



def test_store_and_audit_on_postgres(pg_url, monkeypatch):
    monkeypatch.setenv("QLRF_POSTGRES_URL", pg_url)
    audit = AuditLog()  # from QLRF_POSTGRES_URL, read as postgresql+psycopg2
    clock = Clock(T0)
    store = TaskStore(audit=audit, clock=clock)
    assert store.engine is audit.engine and store.engine.url.drivername == "postgresql+psycopg2"

    task = store.propose(make_plan(), "sensor:drift_breach", PENDING)
    assert task.state == "pending_approval" and task.expires_at == T0 + timedelta(hours=24)
    assert store.propose(make_plan(), "sensor:other", PENDING).id == task.id  # idempotent
    with pytest.raises(TaskStateError, match="bound to plan hash"):
        store.approve(task.id, make_plan(to_ref="ami-0000000000000ccc3").compute_hash(), "alice", "ok")
    with pytest.raises(TaskStateError, match="self-approval refused"):
        store.approve(task.id, task.plan_hash, "sensor:drift_breach", "ok")
    new = store.modify(task.id, task.plan_hash, make_plan(to_ref="ami-0000000000000ccc3"), "dave", "hotfix AMI")
    assert store.get(task.id).reason == f"superseded by {new.id}" and new.supersedes == task.id
    clock.set(T0 + timedelta(hours=23, minutes=30))
    assert [t.id for t in store.expiring_within(timedelta(hours=1))] == [new.id]
    clock.set(T0 + timedelta(hours=1))
    assert store.approve(new.id, new.plan_hash, "alice", "CAB-42").state == "approved"
    assert [t.id for t in store.approved_waiting()] == [new.id]
    store.start(new.id)
    assert store.finish(new.id, "succeeded", "3 waves healthy").state == "succeeded"

    clock.set(T0)
    late = store.propose(make_plan("late"), "sensor", PENDING)
    clock.set(T0 + timedelta(hours=24, seconds=1))
    assert [t.id for t in store.expire_due()] == [late.id]
    assert store.get(late.id).state == "expired"

    result = audit.verify()
    assert result.ok, result.problems
    kinds = [r.kind for r in audit.records()]
    assert kinds.count("plan_proposed") == 3 and kinds.count("expiry") == 1 and kinds[-1] == "expiry"

    with engine_for(pg_url).begin() as conn:
        conn.execute(text("UPDATE rf_audit_log SET data = '{}' WHERE seq = 2"))
    assert audit.verify().problems[0].startswith("record 2 (policy_decision, ")
    with engine_for(pg_url).begin() as conn:
        conn.execute(text("DELETE FROM rf_audit_log WHERE seq = (SELECT max(seq) FROM rf_audit_log)"))
    assert any("removed from the tail" in p for p in audit.verify().problems)


def test_concurrent_appends_and_races_on_postgres(pg_url):
    audit = AuditLog(pg_url)
    errors: list[BaseException] = []

    def append(name: str) -> None:
        try:
            for i in range(40):
                AuditLog(pg_url).append("wave_end", name, f"task-{name}", {"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = audit.verify()
    assert result.ok and result.checked == 80 and result.head_seq == 80, result.problems
    seqs = [r.seq for r in audit.records()]
    assert seqs == list(range(1, 81))
    assert sorted(r.data["i"] for r in audit.records(subject="task-a")) == list(range(40))

    store = TaskStore(pg_url, audit=audit)
    task = store.propose(make_plan("dev-1", environment="dev"), "sensor", ALLOW)
    assert task.state == "approved"
    outcomes = race(lambda: TaskStore(pg_url, audit=AuditLog(pg_url)).start(task.id), 4, TaskStateError)
    assert outcomes == ["refused"] * 3 + ["won"]
    assert len(audit.records(kind="execution_start")) == 1 and audit.verify().ok


def _approve_from_a_host_set_back(pg_url: str, task, shift: str) -> subprocess.CompletedProcess:
    """`qlrf`'s store approving from a process whose clock reads `shift` (libfaketime)."""
    script = (
        "import sys; from qlrf.remediation.approvals import TaskStore; from qlrf.remediation.audit import AuditLog; "
        "u = sys.argv[1]; TaskStore(u, audit=AuditLog(u)).approve(sys.argv[2], sys.argv[3], 'alice', 'late')"
    )
    return subprocess.run(["faketime", "-f", shift, sys.executable, "-c", script, pg_url, task.id, task.plan_hash],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


@pytest.mark.slow
def test_the_server_clock_decides_expiry_and_audit_times(pg_url):
    audit = AuditLog(pg_url)
    proposer = TaskStore(pg_url, audit=audit, clock=Clock(datetime.now(UTC) - timedelta(hours=25)))
    task = proposer.propose(make_plan(), "sensor:drift_breach", PENDING)  # expired an hour ago
    done = _approve_from_a_host_set_back(pg_url, task, "-2d")
    assert done.returncode != 0 and "approval expired at" in done.stderr
    store = TaskStore(pg_url, audit=audit)
    assert store.get(task.id).state == "expired"
    expiry = audit.records(kind="expiry")[-1]
    assert abs(expiry.at - datetime.now(UTC)) < timedelta(minutes=5)  # stamped by the server, not the host
    result = audit.verify()
    assert result.ok, result.problems
    with engine_for(pg_url).begin() as conn:
        conn.execute(text("DELETE FROM rf_audit_log"))
        conn.execute(text("UPDATE rf_audit_head SET seq = 0, hash = :h"), {"h": "0" * 64})
    assert audit.verify().problems == [f"audit log wiped: the anchored head records seq {result.head_seq} but the log is empty"]
