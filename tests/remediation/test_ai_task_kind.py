"""The ``ai_task`` kind of approval task: same states, 24 h expiry and hash-bound approvals as a
patch plan, but never started approved, never launched by the approval sensor, refused by the executor."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from qlrf.ai.tasks import spec_of, task_document
from qlrf.ai.taskspec import TaskSpec, parse_proposal
from qlrf.db import dispose_engines, engine_for
from qlrf.remediation import service
from qlrf.remediation.approvals import AI_TASK, PATCH_PLAN, TaskStateError, TaskStore
from qlrf.remediation.policy import RemediationPolicy
from tests.remediation.support import ALLOW, DENY, PENDING, Clock, make_plan, sqlite_task_store

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def ai_spec(task_type: str = "rebuild_image", environment: str | None = "dev", site: str = "syd1") -> TaskSpec:
    proposal = parse_proposal({"intent": f"{task_type} for {site}", "agent": "image" if task_type == "rebuild_image" else "dr",
                               "task_type": task_type,
                               "scope": {"site": site, "environment": environment, "target_count": 4}})
    return TaskSpec.from_proposal(proposal, policy=RemediationPolicy.load())


@pytest.fixture()
def clock():
    return Clock(T0)


@pytest.fixture()
def store(tmp_path, clock):
    return sqlite_task_store(tmp_path, clock)


def test_an_ai_task_waits_for_a_human_even_when_the_policy_allows(store):
    spec = ai_spec()
    task = store.propose_ai_task(task_document(spec), "cli:alice", ALLOW)
    assert (task.kind, task.state, task.plan_hash, task.task_type) == (AI_TASK, "pending_approval", spec.content_hash,
                                                                       "rebuild_image")
    assert task.expires_at == T0 + timedelta(hours=24)
    assert (task.environment, task.platform, task.site, task.requested_by) == ("dev", "*", "syd1", "cli:alice")
    assert task.plan_id == f"ai-rebuild_image-{spec.content_hash[7:19]}"
    assert task.decision["allow"] is False and task.decision["requires_approval"] is True
    assert spec_of(task) == spec
    assert [r.kind for r in store.audit.records(subject=task.id)] == ["ai_task_proposed", "policy_decision",
                                                                      "approval_requested"]
    assert store.propose_ai_task(task_document(spec), "cli:alice", PENDING).id == task.id  # idempotent on the hash


def test_approval_is_hash_bound_and_never_by_the_requester(store):
    task = store.propose_ai_task(task_document(ai_spec()), "cli:Alice", PENDING)
    with pytest.raises(TaskStateError, match="self-approval refused"):
        store.approve(task.id, task.plan_hash, "CLI:alice ", "mine")
    with pytest.raises(TaskStateError, match="bound to plan hash"):
        store.approve(task.id, "sha256:" + "0" * 64, "bob", "looked")
    approved = store.approve(task.id, task.plan_hash, "bob", "drill window agreed")
    assert approved.state == "approved" and store.approval_problem(approved) is None
    # Approved, but no executor exists for it: the sensor's query leaves it out, the executor refuses it.
    assert store.approved_waiting() == [] and [t.id for t in store.approved_waiting(kinds=(AI_TASK,))] == [task.id]
    with pytest.raises(TaskStateError, match="no executor for AI task type 'rebuild_image' yet"):
        approved.plan()
    with pytest.raises(service.ExecutionRefused, match="is an ai_task: no executor"):
        service.run_approved(store, task.plan_hash, driver_for=lambda p: None, gate=None, audit=store.audit, actor="t")
    assert store.get(task.id).state == "approved"


def test_reject_and_expire_like_a_plan(store, clock):
    first = store.propose_ai_task(task_document(ai_spec()), "cli:alice", PENDING)
    second = store.propose_ai_task(task_document(ai_spec("dr_drill", "staging")), "cli:alice", PENDING)
    assert store.reject(first.id, first.plan_hash, "bob", "not now").state == "rejected"
    clock.set(T0 + timedelta(hours=24))
    assert [t.id for t in store.expire_due()] == [second.id]
    with pytest.raises(TaskStateError, match="is expired, not pending_approval"):
        store.approve(second.id, second.plan_hash, "bob", "late")


def test_a_denied_spec_is_rejected_not_left_pending(store):
    task = store.propose_ai_task(task_document(ai_spec()), "cli:alice", DENY)
    assert task.state == "rejected" and task.approver == "policy:gate"


def test_modify_replaces_an_ai_task_only_with_another_spec(store):
    task = store.propose_ai_task(task_document(ai_spec()), "cli:alice", PENDING)
    with pytest.raises(TaskStateError, match="a ai_task task can only be replaced by another ai_task task"):
        store.modify(task.id, task.plan_hash, make_plan(), "bob", "use a plan")
    new = store.modify(task.id, task.plan_hash, task_document(ai_spec(site="lon1")), "bob", "wrong site")
    assert (new.kind, new.state, new.supersedes, new.site) == (AI_TASK, "pending_approval", task.id, "lon1")
    assert store.get(task.id).state == "rejected"
    with pytest.raises(TaskStateError, match="self-approval refused"):
        store.approve(new.id, new.plan_hash, "bob", "mine now")


def test_an_unsealed_or_edited_spec_is_refused(store):
    spec = ai_spec()
    doc = task_document(spec)
    edited = type(doc)(**{**doc.__dict__, "document": {**doc.document, "intent": "something else"}})
    with pytest.raises(TaskStateError, match="does not match its content"):
        store.propose_ai_task(edited, "cli:alice", PENDING)
    with pytest.raises(TaskStateError, match="must be sealed"):
        task_document(spec.model_copy(update={"content_hash": None}))


def test_patch_plans_keep_their_kind_and_run_as_before(store):
    task = store.propose(make_plan(), "sensor", PENDING)
    assert task.kind == PATCH_PLAN and task.task_type == "patch" and task.plan().metadata.id == "plan-1"
    with pytest.raises(TaskStateError, match="has no AI task spec"):
        spec_of(task)


def test_approval_sensor_skips_ai_tasks(store, clock):
    from sensors.approvals import evaluate_approvals

    ai = store.propose_ai_task(task_document(ai_spec()), "cli:alice", PENDING)
    store.approve(ai.id, ai.plan_hash, "bob", "ok")
    plan = store.propose(make_plan(environment="dev"), "sensor", PENDING)
    store.approve(plan.id, plan.plan_hash, "bob", "ok")
    tick = evaluate_approvals(store, now=T0)
    assert [r.run_key for r in tick.requests] == [plan.plan_hash] and tick.notes == []


def test_an_old_task_table_gains_the_kind_column(tmp_path):
    path = tmp_path / "old.db"
    old = create_engine(f"sqlite:///{path}")
    with old.begin() as conn:  # rf_tasks as created before the kind column existed, with one task
        conn.execute(text("CREATE TABLE rf_tasks (id VARCHAR(64) PRIMARY KEY, plan_hash VARCHAR(80) NOT NULL UNIQUE, "
                          "plan_id VARCHAR(200) NOT NULL, plan_yaml TEXT NOT NULL, state VARCHAR(32) NOT NULL, "
                          "environment VARCHAR(32) NOT NULL, platform VARCHAR(32) NOT NULL, site VARCHAR(200), "
                          "risk_level VARCHAR(16) NOT NULL, autonomy_mode VARCHAR(32) NOT NULL, "
                          "requested_by VARCHAR(200) NOT NULL, created_at DATETIME NOT NULL, updated_at DATETIME NOT NULL, "
                          "expires_at DATETIME, approver VARCHAR(200), reason TEXT, decision TEXT NOT NULL, "
                          "supersedes VARCHAR(64))"))
        conn.execute(text("INSERT INTO rf_tasks VALUES ('task-old', 'sha256:x', 'p', 'y', 'rejected', 'dev', 'aws', NULL, "
                          "'low', 'plan_only', 'a', '2026-11-01 00:00:00', '2026-11-01 00:00:00', NULL, NULL, NULL, :d, NULL)"),
                     {"d": json.dumps({})})
    old.dispose()
    try:
        store = TaskStore(f"sqlite:///{path}")
        assert store.get("task-old").kind == PATCH_PLAN
        assert "kind" in {c[1] for c in engine_for(f"sqlite:///{path}").raw_connection().execute("PRAGMA table_info(rf_tasks)")}
    finally:
        dispose_engines()
