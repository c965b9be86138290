"""The planning and execution jobs, in process, against a temp task store and the embedded gate."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance, build_sensor_context

from jobs.remediation import (
    execution_run_config,
    planning_run_config,
    remediation_execution_job,
    remediation_planning_job,
)
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.findings import findings_from_partition
from qlrf.remediation.policy import RemediationPolicy
from qlrf.warehouse import Warehouse
from resources.remediation import GateResource, RemediationResource
from resources.warehouse import WarehouseResource
from sensors.approvals import build_approval_sensor
from tests.sensors.support import AUTO, DAY, DRIVER, PENDING, FakeDriverRemediation, make_plan, store_at

PARTITION = f"{DAY}|aws"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _finding(root, environment, kind=None):
    wh = Warehouse(str(root))
    findings = findings_from_partition(
        wh.source("drift_scores", DAY, "aws"), wh.source("vm_drift", DAY, "aws"), RemediationPolicy.load(), DAY
    )
    return next(f for f in findings if f.environment == environment and (kind is None or f.kind == kind))


def _plan_run(root, url, finding, policy_path=None, **overrides):
    config = planning_run_config(PARTITION, finding, "sensor:drift_findings_sensor")
    config["ops"]["plan_remediation"]["config"].update(overrides)
    remediation = RemediationResource(database_url=url, policy_path=str(policy_path) if policy_path else None)
    return remediation_planning_job.execute_in_process(
        run_config={**config, **QUIET},
        resources={"warehouse": WarehouseResource(root=str(root)), "remediation": remediation, "gate": GateResource()},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def test_planning_job_proposes_pending_tasks_with_the_policy_decision_audited(drift_day, db_url):
    root, _ = drift_day
    finding = _finding(root, "staging", "drift_threshold")
    result = _plan_run(root, db_url, finding)
    assert result.success
    proposed = result.output_for_node("plan_remediation")
    assert proposed and {p["state"] for p in proposed} == {"pending_approval"}

    store, audit = store_at(db_url), AuditLog(db_url)
    tasks = store.list("pending_approval")
    assert sorted(t.id for t in tasks) == sorted(p["task_id"] for p in proposed)
    task = tasks[0]
    plan = task.plan()
    assert (task.environment, task.platform, task.site, task.autonomy_mode) == ("staging", "aws", finding.site, "canary_only")
    assert plan.metadata.finding["fingerprint"] == finding.fingerprint()
    assert task.requested_by == "sensor:drift_findings_sensor"
    assert task.expires_at is not None

    [decision] = audit.records(subject=task.id, kind="policy_decision")
    assert decision.data["input"]["action"] == "plan" and decision.data["input"]["plan_hash"] == task.plan_hash
    assert decision.data["input"]["fleet_size"] > 0
    body = decision.data["decision"]
    assert body["requires_approval"] is True and body["allow"] is False
    assert [w["wave"] for w in body["waves"]] == list(range(len(plan.spec.waves)))
    assert any("canary_only" in r or "risk level" in r for r in body["approval_reasons"])
    assert [r.kind for r in audit.records(subject=task.id)] == ["plan_proposed", "policy_decision", "approval_requested"]

    # Planning the same finding again is idempotent: same plans, same tasks, no new records.
    count = len(audit.records())
    assert _plan_run(root, db_url, finding).success
    assert len(store.list()) == len(tasks) and len(audit.records()) == count
    assert audit.verify().ok


def test_plan_only_plans_are_kept_but_rejected_by_the_gate(drift_day, db_url, tmp_path):
    root, _ = drift_day
    policy = tmp_path / "remediation.yaml"  # the built-in thresholds (so the same findings), prod in plan_only
    policy.write_text("version: 1\nenvironments:\n  prod: {autonomy_mode: plan_only}\n")
    assert RemediationPolicy.load(policy).thresholds() == RemediationPolicy.load().thresholds()
    result = _plan_run(root, db_url, _finding(root, "prod"), policy)
    assert result.success
    tasks = store_at(db_url).list()
    assert tasks and {t.state for t in tasks} == {"rejected"}
    assert all("plan_only never executes" in t.reason for t in tasks)
    assert all(t.approver == "policy:gate" for t in tasks)


def test_a_finding_that_changed_since_the_sensor_saw_it_plans_nothing(drift_day, db_url):
    root, _ = drift_day
    result = _plan_run(root, db_url, _finding(root, "dev"), fingerprint="0" * 64)
    assert result.success and result.output_for_node("plan_remediation") == []
    assert store_at(db_url).list() == []


def _execute(url, plan_hash, resource=None):
    return remediation_execution_job.execute_in_process(
        run_config={**execution_run_config(plan_hash), **QUIET},
        resources={"remediation": resource or FakeDriverRemediation(database_url=url), "gate": GateResource()},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


@pytest.mark.slow
def test_execution_job_runs_an_auto_approved_plan_once(db_url):
    DRIVER.calls.clear()
    DRIVER.unhealthy_wave = None
    store = store_at(db_url)
    task = store.propose(make_plan("rp-auto"), "sensor:drift_findings_sensor", AUTO)
    assert task.state == "approved" and task.approver == "policy:auto"

    result = _execute(db_url, task.plan_hash)
    assert result.success
    done = store.get(task.id)
    assert done.state == "succeeded" and done.reason == "all 2 waves healthy"
    assert DRIVER.calls == [("prepare",), ("run_wave", 0), ("run_wave", 1)]
    kinds = [r.kind for r in AuditLog(db_url).records()]
    assert kinds.count("wave_start") == 2 and "execution_start" in kinds and kinds[-1] == "execution_end"

    # A second run for the same plan hash does nothing: the task is no longer approved.
    again = _execute(db_url, task.plan_hash)
    assert again.success and again.output_for_node("execute_approved_plan")["skipped"] is True
    assert DRIVER.calls.count(("prepare",)) == 1


@pytest.mark.slow
def test_execution_passes_the_human_approval_to_the_gate(db_url):
    DRIVER.calls.clear()
    DRIVER.unhealthy_wave = None
    store = store_at(db_url)
    plan = make_plan("rp-high", risk_level="high")  # high risk: every wave needs the approval
    task = store.propose(plan, "sensor:drift_findings_sensor", PENDING)
    assert task.state == "pending_approval"
    store.approve(task.id, task.plan_hash, "alice", "reviewed the canary list")
    assert _execute(db_url, task.plan_hash).success
    assert store.get(task.id).state == "succeeded"
    decisions = [r for r in AuditLog(db_url).records(kind="policy_decision") if r.data.get("action") == "execute_wave"]
    assert decisions and all(r.data["decision"]["approved"] for r in decisions)


@pytest.mark.slow
def test_a_failed_health_gate_rolls_back_and_fails_the_run(db_url):
    DRIVER.calls.clear()
    DRIVER.unhealthy_wave = 0
    store = store_at(db_url)
    task = store.propose(make_plan("rp-unhealthy"), "sensor:drift_findings_sensor", AUTO)
    result = _execute(db_url, task.plan_hash)
    DRIVER.unhealthy_wave = None
    assert not result.success
    done = store.get(task.id)
    assert done.state == "rolled_back", _failure(result)
    assert done.state == "rolled_back" and "health gate failed after wave 0" in done.reason
    assert ("rollback", (0,)) in DRIVER.calls


def test_a_dry_run_lists_the_calls_and_never_moves_the_task(db_url):
    DRIVER.calls.clear()
    store = store_at(db_url)
    task = store.propose(make_plan("rp-dry", risk_level="high"), "sensor:drift_findings_sensor", PENDING)
    result = remediation_execution_job.execute_in_process(
        run_config={**execution_run_config(task.plan_hash, dry_run=True), **QUIET},
        resources={"remediation": FakeDriverRemediation(database_url=db_url), "gate": GateResource()},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    output = result.output_for_node("execute_approved_plan")
    assert output == {"plan_id": "rp-dry", "dry_run": True, "would_run": False, "calls": 2, "error": None}
    assert DRIVER.calls == [] and store.get(task.id).state == "pending_approval"  # nothing ran, nothing moved
    [record] = AuditLog(db_url).records(kind="dry_run")
    assert record.subject == task.id and record.actor.startswith("dagster:")
    waves = record.data["waves"]
    assert [w["calls"][0]["operation"] for w in waves] == ["ReplaceInstances"] * 2
    assert [w["allowed"] for w in waves] == [False, False]  # high risk, not yet approved: a real run would wait
    assert not AuditLog(db_url).records(kind="wave_start") and not AuditLog(db_url).records(kind="execution_start")


def test_a_pending_task_is_never_executed(db_url):
    store = store_at(db_url)
    task = store.propose(make_plan("rp-pending", risk_level="high"), "sensor:drift_findings_sensor", PENDING)
    result = _execute(db_url, task.plan_hash)
    assert not result.success and store.get(task.id).state == "pending_approval"


@pytest.mark.slow
def test_approval_sensor_then_execution_job_end_to_end(db_url):
    """What the daemon does: the sensor's request, launched with its run config, executes the plan."""
    DRIVER.calls.clear()
    DRIVER.unhealthy_wave = None
    store = store_at(db_url)
    task = store.propose(make_plan("rp-e2e"), "sensor:drift_findings_sensor", AUTO)
    resources = {"remediation": RemediationResource(database_url=db_url)}
    with build_sensor_context(instance=DagsterInstance.ephemeral(), resources=resources) as context:
        [request] = build_approval_sensor().evaluate_tick(context).run_requests
    result = remediation_execution_job.execute_in_process(
        run_config={**request.run_config, **QUIET},
        resources={"remediation": FakeDriverRemediation(database_url=db_url), "gate": GateResource()},
        instance=DagsterInstance.ephemeral(), tags=request.tags,
    )
    assert result.success and store.get(task.id).state == "succeeded"
    with build_sensor_context(instance=DagsterInstance.ephemeral(), resources=resources) as context:
        assert build_approval_sensor().evaluate_tick(context).run_requests == []


def _failure(result):
    return [e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure]


def test_an_unreachable_gate_proposes_nothing_and_fails_the_run(drift_day, db_url):
    """A fail-closed deny from an outage must not become a permanent rejection of the plan hash."""
    root, _ = drift_day
    finding = _finding(root, "staging", "drift_threshold")
    config = planning_run_config(PARTITION, finding, "sensor:drift_findings_sensor")
    result = remediation_planning_job.execute_in_process(
        run_config={**config, **QUIET},
        resources={"warehouse": WarehouseResource(root=str(root)), "remediation": RemediationResource(database_url=db_url),
                   "gate": GateResource(opa_url="http://127.0.0.1:9")},  # nothing listens on the discard port
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    assert "re-execute this run once the gate answers" in _failure(result)[0]
    assert store_at(db_url).list() == []
    assert _plan_run(root, db_url, finding).success  # the gate is back: the same finding plans normally
    assert {t.state for t in store_at(db_url).list()} == {"pending_approval"}
