"""The approval queue (issue 12 item 8): one open plan per scope, superseding, ranking, bulk decisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.findings import findings_from_partition
from qlrf.remediation.gate import Gate
from qlrf.remediation.planner import build_plans
from qlrf.remediation.policy import RemediationPolicy
from qlrf.remediation.queue import bulk_decide, plan_score, queue_score, rank_plans, ranked_queue
from qlrf.remediation.service import PlanningOutcome, propose_plans
from qlrf.scoring import drift
from tests.remediation.support import PENDING, Clock
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
