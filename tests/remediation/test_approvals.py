"""Approval tasks: the state machine, hash binding, self-approval, modify, expiry, idempotent propose."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from sqlalchemy import text

from qlrf.remediation.approvals import (
    AUTO_APPROVER,
    STATES,
    TRANSITIONS,
    ApprovalExpired,
    PlanHashMismatch,
    SelfApprovalRefused,
    TaskNotFound,
    TaskStateError,
    TaskStore,
    check_transition,
    normalise_identity,
    task_id_for,
)
from qlrf.remediation.audit import AuditLog
from tests.remediation.support import ALLOW, DENY, PENDING, Clock, make_plan, race
from tests.tenancy.support import grant

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
@pytest.fixture()
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'tasks.db'}"


@pytest.fixture()
def clock():
    return Clock(T0)


@pytest.fixture()
def store(url, clock):
    return TaskStore(url, audit=AuditLog(url), clock=clock)


def test_propose_pending_then_approve_run_and_finish(store, clock):
    plan = make_plan()
    task = store.propose(plan, "sensor:drift_breach", PENDING)
    assert task.id == task_id_for(plan.compute_hash()) and task.id.startswith("task-") and len(task.id) == 21
    assert task.state == "pending_approval" and task.plan_hash == plan.compute_hash()
    assert task.expires_at == T0 + timedelta(hours=24) and task.created_at == T0
    assert (task.environment, task.platform, task.site, task.risk_level, task.autonomy_mode) == (
        "prod", "aws", "lon1", "high", "canary_only")
    assert task.decision["approval_reasons"] == ["risk level high always needs approval"]
    assert task.plan().compute_hash() == task.plan_hash and task.plan().metadata.id == "plan-1"
    assert store.approved_waiting() == []

    clock.set(T0 + timedelta(hours=1))
    approved = store.approve(task.id, task.plan_hash, "alice", "reviewed the waves")
    assert approved.state == "approved" and approved.approver == "alice" and approved.reason == "reviewed the waves"
    assert [t.id for t in store.approved_waiting()] == [task.id]
    running = store.start(task.id)
    assert running.state == "running" and store.approved_waiting() == []
    with pytest.raises(TaskStateError, match="illegal transition running -> running"):
        store.start(task.id)
    done = store.finish(task.id, "rolled_back", "canary health gate failed: i-0 impaired")
    assert done.state == "rolled_back" and done.reason == "canary health gate failed: i-0 impaired"
    with pytest.raises(TaskStateError, match="illegal transition rolled_back -> succeeded"):
        store.finish(task.id, "succeeded", "again")

    kinds = [(r.kind, r.actor, r.data.get("to")) for r in store.audit.records(subject=task.id)]
    assert kinds == [
        ("plan_proposed", "sensor:drift_breach", None),
        ("policy_decision", "policy:gate", None),
        ("approval_requested", "policy:gate", "pending_approval"),
        ("approval", "alice", "approved"),
        ("execution_start", "executor", "running"),
        ("execution_end", "executor", "rolled_back"),
    ]
    decision = store.audit.records(subject=task.id, kind="policy_decision")[0].data
    assert decision["input"] == PENDING["input"] and decision["decision"]["requires_approval"] is True
    assert "input" not in decision["decision"]
    assert store.audit.verify().ok


def test_allow_is_auto_approved_and_deny_is_rejected(store):
    auto = store.propose(make_plan("dev-1", environment="dev"), "sensor:drift_breach", ALLOW)
    assert auto.state == "approved" and auto.approver == AUTO_APPROVER and auto.expires_at is None
    denied = store.propose(make_plan("prod-1"), "sensor:drift_breach", DENY)
    assert denied.state == "rejected" and denied.reason == DENY["deny"][0]
    assert [t.id for t in store.list(states="approved")] == [auto.id]
    assert [t.id for t in store.list(states=["rejected"], environment="prod")] == [denied.id]
    assert store.list(environment="staging") == []
    with pytest.raises(TaskStateError, match="unknown state"):
        store.list(states="done")


def test_propose_is_idempotent_on_the_plan_hash(store, clock):
    plan = make_plan()
    first = store.propose(plan, "sensor:a", PENDING)
    clock.set(T0 + timedelta(hours=2))
    again = store.propose(plan.sealed(), "sensor:b", ALLOW)
    assert again == first and again.requested_by == "sensor:a" and again.state == "pending_approval"
    assert len(store.list()) == 1
    assert len(store.audit.records(kind="plan_proposed")) == 1
    assert store.by_hash(plan.compute_hash()).id == first.id and store.by_hash("sha256:" + "f" * 64) is None


def test_approval_is_bound_to_the_plan_hash(store):
    task = store.propose(make_plan(), "sensor:drift_breach", PENDING)
    other = make_plan(to_ref="ami-00000000000evil01").compute_hash()
    for act in (store.approve, store.reject):
        with pytest.raises(PlanHashMismatch, match=f"bound to plan hash {task.plan_hash}, got {other}"):
            act(task.id, other, "alice", "looks fine")
    assert store.get(task.id).state == "pending_approval"


def test_self_approval_and_anonymous_approval_refused(store):
    task = store.propose(make_plan(), "bob", PENDING)
    with pytest.raises(SelfApprovalRefused, match="self-approval refused: bob requested this plan"):
        store.approve(task.id, task.plan_hash, "bob", "mine")
    with pytest.raises(SelfApprovalRefused, match="self-approval refused"):
        store.reject(task.id, task.plan_hash, "bob", "mine")
    with pytest.raises(TaskStateError, match="approver must be given"):
        store.approve(task.id, task.plan_hash, "  ", "x")
    with pytest.raises(TaskStateError, match="reason must be given"):
        store.approve(task.id, task.plan_hash, "alice", "")
    assert store.get(task.id).state == "pending_approval"
    rejected = store.reject(task.id, task.plan_hash, "carol", "wrong window")
    assert (rejected.state, rejected.approver, rejected.reason) == ("rejected", "carol", "wrong window")


def test_identities_are_normalised_before_they_are_stored_or_compared(store):
    assert normalise_identity("  Ａlice@Example.COM ") == "alice@example.com"
    assert normalise_identity("Straße") == normalise_identity("STRASSE")
    task = store.propose(make_plan(), "  Sensor:Drift_Breach ", PENDING)
    assert task.requested_by == "sensor:drift_breach"
    with pytest.raises(TaskStateError, match="self-approval refused: sensor:drift_breach requested this plan"):
        store.approve(task.id, task.plan_hash, "SENSOR:DRIFT_BREACH", "mine")
    approved = store.approve(task.id, task.plan_hash, " Alice@Example.com", "CAB-7")
    assert approved.approver == "alice@example.com"
    assert store.audit.records(kind="approval")[0].actor == "alice@example.com"


def test_without_a_clock_the_store_uses_the_database_clock(url):
    store = TaskStore(url, audit=AuditLog(url))
    before = datetime.now(UTC)
    task = store.propose(make_plan(), "sensor", PENDING)
    assert before - timedelta(seconds=1) <= task.created_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert task.expires_at == task.created_at + timedelta(hours=24)
    with pytest.raises(TypeError):  # no caller can claim another time
        store.expire_due(now=T0)
    with pytest.raises(TypeError):
        store.approve(task.id, task.plan_hash, "alice", "ok", now=T0)


def test_an_approval_record_for_another_plan_hash_proves_nothing(store):
    good = store.propose(make_plan("good"), "sensor", PENDING)
    store.approve(good.id, good.plan_hash, "alice", "ok")
    other = store.propose(make_plan("other"), "sensor", PENDING)
    # Even written with the key, a record approving another plan's hash does not approve this task.
    store.audit.append("approval", "mallory", other.id, {"to": "approved", "plan_hash": good.plan_hash})
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE rf_tasks SET state = 'approved' WHERE id = :i"), {"i": other.id})
    assert store.approval_problem(store.get(good.id)) is None
    assert store.task_problems() == [
        f"task {other.id} is approved but the audit log holds no approval of plan {other.plan_hash}"
    ]
    assert TaskStore(store.engine.url.render_as_string(hide_password=False)).approval_problem(store.get(good.id)) == (
        f"task {good.id} is approved but there is no audit log to prove its approval")


@pytest.mark.parametrize(
    ("current", "new", "ok"),
    [
        ("proposed", "pending_approval", True),
        ("pending_approval", "expired", True),
        ("approved", "running", True),
        ("running", "failed", True),
        ("pending_approval", "running", False),
        ("approved", "rejected", False),
        ("rejected", "approved", False),
        ("expired", "approved", False),
        ("succeeded", "running", False),
        ("proposed", "running", False),
    ],
)
def test_transition_table(current, new, ok):
    if ok:
        check_transition(current, new)
    else:
        with pytest.raises(TaskStateError, match=f"illegal transition {current} -> {new}"):
            check_transition(current, new)
    assert set(TRANSITIONS) == set(STATES)


def test_illegal_moves_through_the_store(store):
    pending = store.propose(make_plan("p"), "sensor", PENDING)
    with pytest.raises(TaskStateError, match="illegal transition pending_approval -> running"):
        store.start(pending.id)
    with pytest.raises(TaskStateError, match="illegal transition pending_approval -> succeeded"):
        store.finish(pending.id, "succeeded", "skipped ahead")
    with pytest.raises(TaskStateError, match="finish state must be one of"):
        store.finish(pending.id, "approved", "x")
    auto = store.propose(make_plan("a", environment="dev"), "sensor", ALLOW)
    with pytest.raises(TaskStateError, match="is approved, not pending_approval: cannot approval"):
        store.approve(auto.id, auto.plan_hash, "alice", "again")
    with pytest.raises(TaskNotFound, match="no task 'task-nope'"):
        store.get("task-nope")


def test_modify_makes_a_new_hash_and_a_new_pending_task(store, clock):
    old = store.propose(make_plan(), "sensor:drift_breach", PENDING)
    edited = make_plan(to_ref="ami-0000000000000ccc3")
    clock.set(T0 + timedelta(hours=1))
    new = store.modify(old.id, old.plan_hash, edited, "dave", "use the hotfix AMI")
    assert new.plan_hash == edited.compute_hash() != old.plan_hash
    assert new.state == "pending_approval" and new.supersedes == old.id and new.requested_by == "dave"
    assert new.expires_at == T0 + timedelta(hours=25)
    assert new.plan().spec.to_image.image_ref == "ami-0000000000000ccc3"
    retired = store.get(old.id)
    assert retired.state == "rejected" and retired.reason == f"superseded by {new.id}" and retired.approver == "dave"
    with pytest.raises(TaskStateError, match="bound to plan hash"):
        store.approve(new.id, old.plan_hash, "alice", "approving the old content")
    with pytest.raises(TaskStateError, match="self-approval refused: dave"):
        store.approve(new.id, new.plan_hash, "dave", "mine")
    clock.set(T0 + timedelta(hours=2))
    assert store.approve(new.id, new.plan_hash, "alice", "ok").state == "approved"
    with pytest.raises(TaskStateError, match="identical"):
        store.modify(new.id, new.plan_hash, edited, "erin", "no change")
    assert [r.kind for r in store.audit.records(subject=old.id)][-2:] == ["modification", "rejection"]


def test_pending_tasks_expire_after_24_hours(store, clock):
    task = store.propose(make_plan(), "sensor", PENDING)
    clock.set(T0 + timedelta(hours=3))
    later = store.propose(make_plan("plan-2"), "sensor", PENDING)
    clock.set(T0 + timedelta(hours=23, minutes=30))
    assert [t.id for t in store.expiring_within(timedelta(hours=1))] == [task.id]
    clock.set(T0 + timedelta(hours=20))
    assert store.expiring_within(timedelta(hours=1)) == []
    clock.set(T0 + timedelta(hours=23, minutes=59))
    assert store.expire_due() == []
    clock.set(T0 + timedelta(hours=24))
    expired = store.expire_due()
    assert [t.id for t in expired] == [task.id] and store.get(task.id).state == "expired"
    assert store.get(later.id).state == "pending_approval"
    with pytest.raises(TaskStateError, match="is expired, not pending_approval"):
        store.approve(task.id, task.plan_hash, "alice", "too late")
    # Past its expiry but not yet swept: the approval is refused and the task expires on the spot.
    clock.set(T0 + timedelta(hours=27, minutes=1))
    with pytest.raises(ApprovalExpired, match="approval expired at 2026-11-28T13:00:00"):
        store.approve(later.id, later.plan_hash, "alice", "late")
    assert store.get(later.id).state == "expired"
    assert [r.actor for r in store.audit.records(kind="expiry")] == ["system:expiry", "system:expiry"]


def test_list_pages_in_the_database_and_counts_the_whole_selection(store, clock):
    made = []
    for n in range(5):
        clock.set(T0 + timedelta(minutes=n))
        made.append(store.propose(make_plan(f"plan-{n}", environment="prod" if n % 2 else "dev"), "sensor", PENDING).id)
    assert [t.id for t in store.list(limit=2)] == made[:2]
    assert [t.id for t in store.list(limit=2, offset=4)] == made[4:]
    assert [t.id for t in store.list(environment="prod", limit=1, offset=1)] == [made[3]]
    assert store.count() == 5 and store.count(environment="prod") == 2 and store.count("approved") == 0
    with pytest.raises(TaskStateError, match="unknown state"):
        store.count("pending")


def test_start_wins_exactly_once_under_concurrency(store):
    task = store.propose(make_plan("dev-1", environment="dev"), "sensor", ALLOW)
    assert race(lambda: store.start(task.id), 6, TaskStateError) == ["refused"] * 5 + ["won"]
    assert len(store.audit.records(kind="execution_start")) == 1 and store.audit.verify().ok


def test_audit_in_another_database_is_appended_after_commit(tmp_path):
    store = TaskStore(f"sqlite:///{tmp_path / 'a.db'}", audit=AuditLog(f"sqlite:///{tmp_path / 'b.db'}"))
    task = store.propose(make_plan(), "sensor", PENDING)
    store.reject(task.id, task.plan_hash, "alice", "no")
    assert [r.kind for r in store.audit.records()] == ["plan_proposed", "policy_decision", "approval_requested", "rejection"]
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rf_audit_log")).scalar() == 0


def test_store_without_url_uses_sqlite_under_qlrf_home(isolated_env):
    store = TaskStore()
    assert store.engine.url.database == str(isolated_env.resolve() / "qlrf.db")
    assert store.propose(make_plan(), "sensor", PENDING).state == "pending_approval"
    assert (isolated_env / "qlrf.db").exists()


# --- the CLI, end to end through subprocesses -------------------------------------------------------


def qlrf(home, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    env["QLRF_HOME"] = str(home)
    env["QLRF_CLI_TRUSTED_LOCAL_USER"] = "operator"  # --as names the approver (issue 14)
    return subprocess.run([sys.executable, "-m", "qlrf.cli", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
def test_cli_round_trip(tmp_path, monkeypatch):
    home = tmp_path / "home"
    plan = make_plan().sealed()
    good = tmp_path / "plan.yaml"
    good.write_text(plan.to_yaml())
    bad_doc = plan.model_dump(mode="json", exclude={"content_hash"})
    bad_doc["spec"]["max_unavailable"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(bad_doc))

    ok = qlrf(home, "plan", "validate", str(good))
    assert ok.returncode == 0 and plan.content_hash in ok.stdout
    invalid = qlrf(home, "plan", "validate", str(bad))
    assert invalid.returncode == 2
    assert f"{bad}: invalid patch plan: spec.max_unavailable" in invalid.stderr
    shown = qlrf(home, "plan", "show", str(good))
    assert shown.returncode == 0, shown.stderr
    assert f"hash        {plan.content_hash}" in shown.stdout
    assert "risk        high" in shown.stdout and "autonomy    canary_only" in shown.stdout
    assert "targets     3 machine(s): 0 group(s), 3 instance(s)" in shown.stdout
    assert "  0 canary     canary      1 target(s)" in shown.stdout
    assert "  1 batch-1    batch       2 target(s)" in shown.stdout

    monkeypatch.setenv("QLRF_HOME", str(home))
    monkeypatch.delenv("QLRF_POSTGRES_URL", raising=False)
    monkeypatch.delenv("QLRF_AUDIT_DIR")  # the CLI subprocesses anchor under $QLRF_HOME/audit: so must we
    task = TaskStore(audit=AuditLog()).propose(plan, "sensor:drift_breach", PENDING)
    for who in ("alice", "bob", "sensor:drift_breach"):
        grant(who, "approver@*")

    listed = qlrf(home, "approvals", "list", "--state", "pending_approval")
    assert listed.returncode == 0 and task.id in listed.stdout and task.plan_hash in listed.stdout
    assert qlrf(home, "approvals", "list", "--state", "approved").stdout == ""
    wrong = qlrf(home, "approvals", "approve", task.id, "--hash", "sha256:" + "1" * 64, "--as", "alice", "--reason", "ok")
    assert wrong.returncode == 2 and "approval is bound to plan hash" in wrong.stderr
    selfie = qlrf(home, "approvals", "approve", task.id, "--hash", task.plan_hash, "--as", "sensor:drift_breach",
                  "--reason", "ok")
    assert selfie.returncode == 2 and "self-approval refused" in selfie.stderr
    done = qlrf(home, "approvals", "approve", task.id, "--hash", task.plan_hash, "--as", "alice", "--reason", "CAB-42")
    assert done.returncode == 0 and f"approved: {task.id}" in done.stdout and "by alice: CAB-42" in done.stdout
    again = qlrf(home, "approvals", "reject", task.id, "--hash", task.plan_hash, "--as", "bob", "--reason", "late")
    assert again.returncode == 2 and "is approved, not pending_approval" in again.stderr

    verified = qlrf(home, "audit", "verify")
    assert verified.returncode == 0 and verified.stdout.startswith(f"ok: {len(AuditLog().records())} record(s), chain intact")
    assert [r.kind for r in AuditLog().records() if r.subject == task.id][-2:] == ["access_denied", "approval"]
    shown = qlrf(home, "audit", "show", "--subject", task.id, "--limit", "1")
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 1
    assert "approval" in shown.stdout and "alice" in shown.stdout and "CAB-42" in shown.stdout

    approval_seq = AuditLog().records(subject=task.id, kind="approval")[0].seq
    with sqlite3.connect(home / "qlrf.db") as conn:
        conn.execute(f"UPDATE rf_audit_log SET actor = 'mallory' WHERE seq = {approval_seq}")
    broken = qlrf(home, "audit", "verify")
    assert broken.returncode == 1
    assert f"problem: record {approval_seq} (approval, " in broken.stdout and "(edited)" in broken.stdout
    assert f"problem: task {task.id} is approved but the audit log holds no approval of plan {task.plan_hash}" \
        in broken.stdout
