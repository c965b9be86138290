"""canary_only as the policy says (issue 12 item 5): the canary wave runs without approval when the
gate allows it, later waves wait for the approval of the plan hash, and the task keeps the verdict."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobs.remediation import EXECUTE_OP
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.gate import Gate
from qlrf.remediation.service import canary_waiting, plan_decision, run_approved, run_canary
from sensors.approvals import evaluate_approvals
from tests.remediation.support import NOW, Clock
from tests.sensors.support import make_plan


class Recorder:
    """A driver that changes nothing but remembers the waves it ran; `sick_wave` never gets healthy."""

    def __init__(self, sick_wave: int | None = None):
        self.waves: list[int] = []
        self.rolled_back: list[list[int]] = []
        self.sick_wave = sick_wave

    def prepare(self, plan):
        return {}

    def run_wave(self, plan, index):
        self.waves.append(index)
        return {}

    def health(self, plan, index):
        return HealthReport(index != self.sick_wave, 1, 0 if index == self.sick_wave else 1)

    def rollback(self, plan, waves_done):
        self.rolled_back.append(list(waves_done))
        return {}


@pytest.fixture()
def store(tmp_path):
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    return TaskStore(url, audit=AuditLog(url), clock=Clock(datetime(2026, 11, 27, 10, tzinfo=UTC)))


@pytest.fixture(scope="module")
def gate():
    return Gate.embedded()


def propose_staging(store, gate):
    plan = make_plan("rp-staging", instances=4, environment="staging", autonomy_mode="canary_only", risk_level="medium")
    decision = plan_decision(gate, plan, requested_by="sensor:drift_findings_sensor", fleet_size=1000)
    return store.propose(plan, "sensor:drift_findings_sensor", decision), decision


def run(fn, store, gate, task, driver):
    return fn(store, task.plan_hash, driver_for=lambda _p: driver, gate=gate, audit=store.audit,
              actor="dagster:run-1", now=NOW)


def test_the_canary_runs_before_the_approval_and_the_rest_after_it(store, gate):
    task, decision = propose_staging(store, gate)
    assert decision["canary_allowed"] is True and decision["requires_approval"] is True
    assert task.state == "pending_approval" and canary_waiting(task)

    tick = evaluate_approvals(store, now=NOW)
    (request,) = tick.requests
    assert request.run_key == f"canary:{task.plan_hash}"
    assert request.run_config["ops"][EXECUTE_OP]["config"] == {"plan_hash": task.plan_hash, "canary_only": True}

    driver = Recorder()
    outcome = run(run_canary, store, gate, task, driver)
    assert driver.waves == [0] and outcome.result.state == "paused"
    task = store.get(task.id)
    assert task.state == "pending_approval" and task.decision["canary"]["passed"] is True  # the approval card's verdict
    assert task.decision["canary"]["health"]["healthy"] is True
    assert [r.data["passed"] for r in store.audit.records(subject=task.id, kind="canary_verdict")] == [True]
    assert evaluate_approvals(store, now=NOW).requests == []  # the later waves wait for a person
    assert run(run_canary, store, gate, task, Recorder()).skipped  # a canary runs once

    store.approve(task.id, task.plan_hash, "alice@example.com", "canary held")
    (after,) = evaluate_approvals(store, now=NOW).requests
    assert after.run_key == task.plan_hash and "canary_only" not in after.run_config["ops"][EXECUTE_OP]["config"]
    done = run(run_approved, store, gate, task, driver)
    assert done.state == "succeeded" and driver.waves == [0, 1]  # the canary did not run twice
    later = [r.data for r in store.audit.records(subject=task.id, kind="policy_decision") if r.data.get("wave") == 1]
    assert later[-1]["input"]["canary_passed"] is True and later[-1]["input"]["approval"]["approver"] == "alice@example.com"


def test_a_failed_canary_rolls_back_and_rejects_the_plan(store, gate):
    task, _ = propose_staging(store, gate)
    driver = Recorder(sick_wave=0)
    plan_file_timeout = task.plan().spec.health_gate.timeout_seconds
    outcome = run(run_canary, store, gate, task, driver)
    assert outcome.result.state == "rolled_back" and driver.rolled_back == [[0]]
    task = store.get(task.id)
    assert task.state == "rejected" and task.approver == "policy:canary"
    assert task.reason.startswith(f"canary failed: health gate failed after wave 0 (canary): 0/1 healthy within {plan_file_timeout}s")
    assert task.decision["canary"]["passed"] is False


def test_high_risk_waits_for_a_person_even_for_the_canary(store, gate):
    plan = make_plan("rp-prod", environment="prod", autonomy_mode="canary_only", risk_level="high")
    decision = plan_decision(gate, plan, requested_by="sensor:drift_findings_sensor", fleet_size=1000)
    assert decision["canary_allowed"] is False
    task = store.propose(plan, "sensor:drift_findings_sensor", decision)
    assert not canary_waiting(task) and evaluate_approvals(store, now=NOW).requests == []
