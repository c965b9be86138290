"""Fault catalogue, class "approvals": attempts to approve what must not be approved, or to make the
audit log forget or misdate what happened.

Each test is one attack against the task store and the audit log as shipped (SQLite file, key and
head file in a temporary anchor folder). It holds when the store refuses the move or
``audit verify`` names the damage, and nothing is executed on the strength of a forged state.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from qlrf.db import GENESIS_HASH
from qlrf.remediation.approvals import TaskStateError, TaskStore
from qlrf.remediation.audit import AuditLog, record_hash
from qlrf.remediation.service import ExecutionRefused, run_approved
from tests.remediation.support import PENDING, make_plan

pytestmark = pytest.mark.fault

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture()
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture()
def store(url):
    return TaskStore(url, audit=AuditLog(url))


def sql(store: TaskStore, statement: str, **params) -> None:
    """What an attacker with write access to the database (and nothing else) can do."""
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def filled(store: TaskStore) -> TaskStore:
    task = store.propose(make_plan(), "sensor:drift_breach", PENDING)
    store.approve(task.id, task.plan_hash, "alice", "CAB-42")
    return store


def test_case_variant_self_approval(store):
    task = store.propose(make_plan(), "alice@example.com", PENDING)
    for alias in ("Alice@Example.com", "  ALICE@EXAMPLE.COM ", "ａｌｉｃｅ@example.com"):
        with pytest.raises(TaskStateError, match="self-approval refused"):
            store.approve(task.id, task.plan_hash, alias, "mine")
    assert store.get(task.id).state == "pending_approval"


def test_backdated_approval_of_an_expired_task(url):
    store = TaskStore(url, audit=AuditLog(url), approval_ttl=timedelta(milliseconds=200))
    task = store.propose(make_plan(), "sensor:drift_breach", PENDING)
    time.sleep(0.4)
    with pytest.raises(TypeError):  # the caller's clock is no input any more
        store.approve(task.id, task.plan_hash, "bob", "backdated", now=LONG_AGO)
    with pytest.raises(TaskStateError, match="approval expired"):
        store.approve(task.id, task.plan_hash, "bob", "late")
    assert store.get(task.id).state == "expired"


@pytest.mark.slow
def test_backdated_audit_from_a_host_whose_clock_is_set_back(store, url, tmp_path):
    filled(store)
    script = (
        "import sys; from qlrf.remediation.audit import AuditLog; "
        "AuditLog(sys.argv[1]).append('alert', 'mallory', 'task-x', {'note': 'written from the past'})"
    )
    env = {**os.environ, "FAKETIME_DONT_RESET": "1"}
    done = subprocess.run(["faketime", "-f", "-400d", sys.executable, "-c", script, url], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    records = store.audit.records()
    assert records[-1].actor == "mallory"
    assert records[-1].at >= records[-2].at  # never earlier than the record before it
    assert store.audit.verify().ok


def test_tail_truncation_with_the_head_row_reset(store):
    filled(store)
    records = store.audit.records()
    keep = records[-3]
    sql(store, "DELETE FROM rf_audit_log WHERE seq > :s", s=keep.seq)
    sql(store, "UPDATE rf_audit_head SET seq = :s, hash = :h", s=keep.seq, h=keep.hash)
    problems = store.audit.verify().problems
    assert f"2 record(s) missing after seq {keep.seq} (the anchored head records seq {records[-1].seq})" in problems


def test_full_wipe(store):
    filled(store)
    last = store.audit.records()[-1].seq
    sql(store, "DELETE FROM rf_audit_log")
    sql(store, "UPDATE rf_audit_head SET seq = 0, hash = :h", h=GENESIS_HASH)
    result = store.audit.verify()
    assert not result.ok
    assert result.problems == [f"audit log wiped: the anchored head records seq {last} but the log is empty"]


def test_edited_record_with_the_chain_and_head_recomputed(store):
    filled(store)
    records = store.audit.records()
    prev = GENESIS_HASH
    for r in records:  # rewrite the approval's actor, then re-hash every record after it and the head
        actor = "mallory" if r.kind == "approval" else r.actor
        at = r.to_dict()["at"]
        digest = record_hash(r.seq, at, r.kind, actor, r.subject, r.data, prev)
        sql(store, "UPDATE rf_audit_log SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s",
            a=actor, p=prev, h=digest, s=r.seq)
        prev = digest
    sql(store, "UPDATE rf_audit_head SET hash = :h", h=prev)
    problems = store.audit.verify().problems
    approval = next(r for r in records if r.kind == "approval")
    assert f"record {approval.seq}: MAC does not match (edited, or written without the audit key)" in problems


def test_approved_task_without_an_approval_record_is_flagged_and_not_executed(store):
    task = store.propose(make_plan(), "sensor:drift_breach", PENDING)
    sql(store, "UPDATE rf_tasks SET state = 'approved', approver = 'mallory', reason = 'trust me' WHERE id = :i", i=task.id)
    assert store.task_problems() == [
        f"task {task.id} is approved but the audit log holds no approval of plan {task.plan_hash}"
    ]
    drivers: list[str] = []
    with pytest.raises(ExecutionRefused, match=f"refusing to execute: task {task.id} is approved but the audit log holds no approval"):
        run_approved(store, task.plan_hash, driver_for=drivers.append, gate=None, audit=store.audit, actor="executor")
    with pytest.raises(TaskStateError, match="holds no approval of plan .*: refusing to start it"):
        store.start(task.id)  # any other caller that starts tasks directly
    assert drivers == [] and store.get(task.id).state == "approved"
