"""The approval queue (issue 12 item 8): one open plan per scope, superseding, ranking, bulk decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qlrf.ai.tasks import task_document
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.findings import findings_from_partition
from qlrf.remediation.gate import Gate
from qlrf.remediation.planner import build_plans
from qlrf.remediation.policy import QueuePolicy, RemediationPolicy
from qlrf.remediation.queue import (
    Admission,
    admit,
    bulk_decide,
    pending_plans,
    plan_score,
    queue_score,
    rank_plans,
    ranked_queue,
)
from qlrf.remediation.service import PlanningOutcome, audit_queue, propose_plans
from qlrf.scoring import drift
from tests.remediation.support import PENDING, Clock
from tests.remediation.test_ai_task_kind import ai_spec
from tests.remediation.test_planner import DAY, partition, registry
from tests.sensors.support import make_plan

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@pytest.fixture()
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    return TaskStore(url, audit=AuditLog(url), clock=Clock(T0))


def test_score_puts_risk_first_then_environment_then_revoked_then_size():
    assert queue_score("critical", "dev", 1, 0) > queue_score("high", "prod", 10_000, 100)
    assert queue_score("high", "prod", 5, 0) > queue_score("high", "staging", 5, 0) > queue_score("high", "dev", 5, 0)
    assert queue_score("high", "dev", 5, 3) > queue_score("high", "dev", 5, 0)
    assert queue_score("high", "dev", 50, 0) > queue_score("high", "dev", 5, 0)
    assert queue_score("low", "dev", 0, 0) == 0
    assert queue_score("high", "prod", 1_000_000, 1_000) == 400 + 40 + 40 + 40  # every part capped


def test_a_new_plan_supersedes_the_older_pending_one_of_its_scope(store):
    old = store.propose(make_plan("rp-old", environment="prod", risk_level="high", created_at="2026-11-26T00:00:00Z"),
                        "sensor:drift", PENDING)
    other_site = store.propose(make_plan("rp-fra1", environment="prod", risk_level="high", site="fra1"), "sensor:drift", PENDING)
    new = store.propose(make_plan("rp-new", environment="prod", risk_level="high"), "sensor:drift", PENDING, supersede=[old.id])
    assert (new.state, new.supersedes) == ("pending_approval", old.id)
    gone = store.get(old.id)
    assert (gone.state, gone.reason, gone.approver) == ("rejected", f"superseded by {new.id}", "policy:queue")
    assert store.get(other_site.id).state == "pending_approval"  # another scope keeps its plan
    record = store.audit.records(subject=old.id, kind="rejection")[-1]
    assert record.data["superseded_by"] == new.id and record.data["scope"] == {"site": "lon1", "environment": "prod", "platform": "aws"}
    again = store.propose(make_plan("rp-new", environment="prod", risk_level="high"), "sensor:drift", PENDING, supersede=[old.id])
    assert again.id == new.id  # idempotent on the hash


@pytest.fixture()
def lon1_prod_plans():
    policy = RemediationPolicy.load()
    vm_drift = partition()
    breach = next(f for f in findings_from_partition(drift.drift_scores(vm_drift), vm_drift, policy, DAY) if f.scope == "aws/lon1/prod")
    return build_plans(breach, vm_drift, registry(), policy)


def test_planning_keeps_one_open_plan_per_scope_and_defers_the_rest(store, lon1_prod_plans):
    assert len(lon1_prod_plans) == 2  # eu-west-1 and us-east-1: both high risk, both would wait for a person
    ranked = rank_plans(lon1_prod_plans)
    assert plan_score(ranked[0]) >= plan_score(ranked[1])
    outcome = PlanningOutcome(None, [])
    propose_plans(store, Gate.embedded(), ranked, outcome, day=DAY, requested_by="sensor:drift", fleet_size=1000)
    assert [(p.plan_id, p.state) for p in outcome.proposed] == [(ranked[0].metadata.id, "pending_approval")]
    assert len(outcome.deferred) == 1 and outcome.deferred[0].startswith(f"{ranked[1].metadata.id} (")
    assert "scope lon1/prod/aws has an open plan" in outcome.deferred[0]
    assert [e.task.plan_id for e in ranked_queue(store)] == [ranked[0].metadata.id]


def test_an_older_day_never_supersedes_a_newer_days_plan(store, lon1_prod_plans):
    newer = make_plan("rp-newer", environment="prod", risk_level="high")
    doc = newer.model_dump(mode="json", exclude={"content_hash"})
    doc["metadata"]["finding"] = {"day": "2026-11-28"}
    newer = type(newer).model_validate(doc).sealed()
    held = store.propose(newer, "sensor:drift", PENDING)
    outcome = PlanningOutcome(None, [])
    propose_plans(store, Gate.embedded(), rank_plans(lon1_prod_plans), outcome, day=DAY, requested_by="sensor:drift", fleet_size=1000)
    assert outcome.proposed == [] and len(outcome.deferred) == 2
    assert store.get(held.id).state == "pending_approval"


def test_bulk_decisions_only_for_low_risk(store):
    low = [store.propose(make_plan(f"rp-low-{n}", site=f"s{n}"), "sensor:drift", PENDING) for n in range(3)]
    high = store.propose(make_plan("rp-high", risk_level="high", site="x"), "sensor:drift", PENDING)
    mine = store.propose(make_plan("rp-mine", site="y"), "alice@example.com", PENDING)
    with pytest.raises(ValueError, match="bulk decisions are for low-risk plans only, got --risk high"):
        bulk_decide(store, approve=True, approver="alice@example.com", reason="ok", risk="high")
    result = bulk_decide(store, approve=True, approver="Alice@Example.com", reason="routine dev patching")
    assert sorted(t.id for t in result.decided) == sorted(t.id for t in low)
    assert all(t.state == "approved" and t.approver == "alice@example.com" for t in result.decided)
    assert result.refused == [f"{mine.id}: task {mine.id}: self-approval refused: alice@example.com requested this plan"]
    assert store.get(high.id).state == "pending_approval"
    rejected = bulk_decide(store, approve=False, approver="bob@example.com", reason="not now")
    assert [t.id for t in rejected.decided] == [mine.id] and store.get(mine.id).state == "rejected"


# --- the work-in-progress limit (policy queue.max_pending) ---------------------------------------------


def limits(max_pending: int, **per_environment: int) -> QueuePolicy:
    return QueuePolicy(max_pending=max_pending, max_pending_per_environment=per_environment)


def waiting(name: str, *, site: str, environment: str = "dev", risk_level: str = "low", instances: int = 3):
    """A plan the embedded gate sends to a person (canary_only): it would be a pending task."""
    return make_plan(name, site=site, environment=environment, risk_level=risk_level, autonomy_mode="canary_only",
                     instances=instances)


def plan_one(store, plan, queue: QueuePolicy) -> PlanningOutcome:
    outcome = PlanningOutcome(None, [])
    propose_plans(store, Gate.embedded(), [plan], outcome, day=DAY, requested_by="sensor:drift", fleet_size=1000,
                  limits=queue)
    return outcome


def test_a_full_queue_defers_a_plan_that_does_not_outrank_its_lowest(store):
    held = [store.propose(waiting(f"rp-prod-{n}", site=f"p{n}", environment="prod", risk_level="high"), "sensor:drift", PENDING)
            for n in range(3)]
    late = waiting("rp-dev", site="d1")
    outcome = plan_one(store, late, limits(3))
    assert outcome.proposed == [] and outcome.displaced == []
    assert outcome.queue_deferred == [{"scope": "d1/dev/aws", "plan_id": late.metadata.id, "rank": 4, "score": plan_score(late),
                                       "targets": 3, "plans": 1, "limit": 3, "pool": "queue"}]
    assert store.by_hash(late.content_hash) is None  # deferred: no task written
    assert sorted(t.id for t in pending_plans(store)) == sorted(t.id for t in held)


def test_a_plan_that_outranks_the_lowest_pending_one_displaces_it(store):
    small = store.propose(waiting("rp-small", site="d1", instances=1), "sensor:drift", PENDING)
    big = store.propose(waiting("rp-big", site="d2", instances=50), "sensor:drift", PENDING)
    urgent = waiting("rp-urgent", site="p1", environment="prod", risk_level="high")
    outcome = plan_one(store, urgent, limits(2))
    new = store.by_hash(urgent.content_hash)
    assert [(p.task_id, p.state) for p in outcome.proposed] == [(new.id, "pending_approval")]
    assert outcome.displaced == [f"{small.id} by {new.id}"]  # the lowest-ranked: fewer targets
    gone = store.get(small.id)
    assert (gone.state, gone.reason, gone.approver) == ("rejected", f"deferred: outranked by {new.id}", "policy:queue")
    record = store.audit.records(subject=small.id, kind="rejection")[-1]
    assert record.actor == "policy:queue" and record.data["outranked_by"] == new.id
    assert [e.task.id for e in ranked_queue(store)] == [new.id, big.id]


def test_ai_tasks_are_neither_counted_nor_displaced(store):
    ai = store.propose_ai_task(task_document(ai_spec()), "cli:alice", PENDING)
    plan = store.propose(waiting("rp-one", site="d1"), "sensor:drift", PENDING)
    second = waiting("rp-two", site="d2", instances=2)
    assert [p.state for p in plan_one(store, second, limits(2)).proposed] == ["pending_approval"]  # the AI task takes no room
    urgent = waiting("rp-urgent", site="p1", environment="prod", risk_level="high")
    outcome = plan_one(store, urgent, limits(2))
    assert outcome.displaced == [f"{store.by_hash(second.content_hash).id} by {store.by_hash(urgent.content_hash).id}"]
    assert store.get(ai.id).state == "pending_approval" and store.get(plan.id).state == "pending_approval"


def test_an_environment_limit_is_checked_before_the_total(store):
    prod = store.propose(waiting("rp-prod", site="p1", environment="prod", risk_level="high", instances=20), "sensor:drift", PENDING)
    other = waiting("rp-prod-2", site="p2", environment="prod", risk_level="high", instances=2)
    outcome = plan_one(store, other, limits(10, prod=1))
    assert [(d["pool"], d["limit"], d["rank"]) for d in outcome.queue_deferred] == [("environment prod", 1, 2)]
    staging = waiting("rp-staging", site="s1", environment="staging", risk_level="medium")
    assert [p.state for p in plan_one(store, staging, limits(10, prod=1)).proposed] == ["pending_approval"]
    bigger = waiting("rp-prod-3", site="p3", environment="prod", risk_level="high", instances=60)
    outcome = plan_one(store, bigger, limits(10, prod=1))
    assert outcome.displaced == [f"{prod.id} by {store.by_hash(bigger.content_hash).id}"]  # not the lower-ranked staging plan


def test_admit_ranks_ties_in_favour_of_the_plan_already_waiting(store):
    store.propose(waiting("rp-a", site="d1"), "sensor:drift", PENDING)
    same = waiting("rp-b", site="d2")
    room = admit(ranked_queue(store), plan_score(same), "dev", 1)
    assert (room.admit, room.rank, room.displace) == (False, 2, None)
    assert admit(ranked_queue(store), plan_score(same), "dev", 2) == Admission(True, 2, None, "queue")


def test_a_deferred_scope_becomes_a_task_once_the_queue_has_room(store, lon1_prod_plans):
    blocker = store.propose(waiting("rp-block", site="p9", environment="prod", risk_level="critical"), "sensor:drift", PENDING)
    ranked = rank_plans(lon1_prod_plans)
    first = PlanningOutcome(None, [])
    propose_plans(store, Gate.embedded(), ranked, first, day=DAY, requested_by="sensor:drift", fleet_size=1000, limits=limits(1))
    assert first.proposed == [] and [(d["scope"], d["plans"]) for d in first.queue_deferred] == [("lon1/prod/aws", 2)]
    audit_queue(store, [first], limits(1), day=DAY, requested_by="sensor:drift")
    (record,) = store.audit.records(subject=f"planning:{DAY}", kind="queue_deferred")
    assert record.actor == "policy:queue" and [(d["plan_id"], d["rank"]) for d in record.data["deferred"]] == [(ranked[0].metadata.id, 2)]
    store.reject(blocker.id, blocker.plan_hash, "bob@example.com", "not this week")  # the queue has room again
    again = PlanningOutcome(None, [])
    propose_plans(store, Gate.embedded(), ranked, again, day=DAY, requested_by="sensor:drift", fleet_size=1000, limits=limits(1))
    assert [(p.plan_id, p.state) for p in again.proposed] == [(ranked[0].metadata.id, "pending_approval")]
    assert again.queue_deferred == [] and len(again.deferred) == 1  # the second plan waits behind its scope's open plan
