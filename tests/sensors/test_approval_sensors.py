"""remediation_approval_sensor, approval_expiry_sensor and run_failure_alert_sensor with build_*_context."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    Failure,
    build_run_status_sensor_context,
    build_sensor_context,
    job,
    op,
)

from jobs.remediation import EXECUTE_OP, EXECUTION_JOB
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from resources.remediation import RemediationResource
from sensors import remediation_sensors, sensor_statuses
from sensors.alerts import build_run_failure_alert_sensor
from sensors.approvals import build_approval_sensor, build_expiry_sensor
from tests.remediation.support import Clock
from tests.sensors.support import AUTO, PENDING, CapturingAlerts, make_plan, store_at


def _approval_tick(url, cursor=None):
    with build_sensor_context(
        instance=DagsterInstance.ephemeral(), cursor=cursor, resources={"remediation": RemediationResource(database_url=url)}
    ) as context:
        return build_approval_sensor().evaluate_tick(context)


def test_one_execution_request_per_approved_plan_keyed_by_its_hash(db_url):
    store = store_at(db_url)
    auto = store.propose(make_plan("rp-auto"), "sensor:drift_findings_sensor", AUTO)
    human = store.propose(make_plan("rp-human", risk_level="high"), "sensor:drift_findings_sensor", PENDING)
    store.approve(human.id, human.plan_hash, "alice", "looked at the canary")
    pending = store.propose(make_plan("rp-pending", risk_level="high"), "sensor:drift_findings_sensor", PENDING)
    rejected = store.propose(make_plan("rp-rejected", risk_level="high"), "sensor:drift_findings_sensor", PENDING)
    store.reject(rejected.id, rejected.plan_hash, "bob", "not now")

    result = _approval_tick(db_url)
    requests = {r.run_key: r for r in result.run_requests}
    assert set(requests) == {auto.plan_hash, human.plan_hash}
    assert pending.plan_hash not in requests and rejected.plan_hash not in requests
    request = requests[human.plan_hash]
    assert request.job_name == EXECUTION_JOB
    assert request.run_config == {"ops": {EXECUTE_OP: {"config": {"plan_hash": human.plan_hash}}}}
    assert request.tags["qlrf/task_id"] == human.id and request.tags["qlrf/approver"] == "alice"

    # Every tick asks again while the task waits (Dagster launches a run key once); audited once.
    again = _approval_tick(db_url)
    assert {r.run_key for r in again.run_requests} == set(requests)
    audited = AuditLog(db_url).records(kind="sensor_request")
    assert sorted(r.subject for r in audited) == sorted(requests)

    # Once started, it is no longer waiting: nothing more is requested for it.
    store.start(auto.id)
    assert {r.run_key for r in _approval_tick(db_url).run_requests} == {human.plan_hash}


def test_nothing_to_launch_is_a_skip(db_url):
    store_at(db_url).propose(make_plan("rp-pending", risk_level="high"), "sensor:drift_findings_sensor", PENDING)
    result = _approval_tick(db_url)
    assert result.run_requests == [] and result.skip_message == "no approved plan to launch"


def test_a_closed_maintenance_window_holds_the_launch(db_url):
    now = datetime.now(UTC)
    closed_day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(now.weekday() + 3) % 7]
    plan = make_plan("rp-window", window={"days": [closed_day], "start": "00:00", "end": "23:59"})
    store_at(db_url).propose(plan, "sensor:drift_findings_sensor", AUTO)
    result = _approval_tick(db_url)
    assert result.run_requests == [] and "1 waiting for a maintenance window" in result.skip_message


def test_expiry_sensor_expires_stale_tasks_and_warns_before(db_url, captured):
    store = store_at(db_url)
    now = datetime.now(UTC)
    clock = Clock(now - timedelta(hours=25))  # proposed in the past; the sensor's store reads the database clock
    past = TaskStore(db_url, audit=AuditLog(db_url), clock=clock)
    stale = past.propose(make_plan("rp-stale", risk_level="high"), "sensor:drift_findings_sensor", PENDING)
    clock.set(now - timedelta(hours=23))
    soon = past.propose(make_plan("rp-soon", risk_level="high"), "sensor:drift_findings_sensor", PENDING)
    fresh = store.propose(make_plan("rp-fresh", risk_level="high"), "sensor:drift_findings_sensor", PENDING)

    resources = {"remediation": RemediationResource(database_url=db_url), "alerts": CapturingAlerts(database_url=db_url)}
    def tick():
        with build_sensor_context(instance=DagsterInstance.ephemeral(), resources=resources) as context:
            return build_expiry_sensor().evaluate_tick(context)

    result = tick()
    assert result.run_requests == []
    assert result.skip_message == "expired 1 task(s); 1 expiring within 2 h"

    assert store.get(stale.id).state == "expired"
    assert store.get(soon.id).state == "pending_approval" and store.get(fresh.id).state == "pending_approval"
    [expiry] = AuditLog(db_url).records(subject=stale.id, kind="expiry")
    assert expiry.actor == "sensor:approval_expiry_sensor" and expiry.data["to"] == "expired"

    kinds = {(a.kind, a.key) for a in captured}
    assert kinds == {("approval_expiring", f"approval_expiring|{soon.id}"), ("approval_expired", f"approval_expired|{stale.id}")}
    warning = next(a for a in captured if a.kind == "approval_expiring")
    assert warning.title.startswith("Approval for rp-soon expires in 0 h") and soon.id in warning.text

    # The next tick expires nothing more, and the warning is deduplicated.
    captured.clear()
    assert tick().skip_message == "expired 0 task(s); 1 expiring within 2 h"
    assert captured == []


def test_run_failure_sensor_alerts_with_the_root_cause(db_url, captured):
    @op
    def explode():
        raise Failure("the OPA at http://opa:8181 is unreachable")

    @job(name=EXECUTION_JOB)
    def failing():
        explode()

    instance = DagsterInstance.ephemeral()
    result = failing.execute_in_process(instance=instance, raise_on_error=False, tags={"qlrf/plan_id": "rp-x"})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    with build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"alerts": CapturingAlerts(database_url=db_url), "remediation": RemediationResource(database_url=db_url)},
    ) as status_context:
        build_run_failure_alert_sensor()(status_context.for_run_failure())
    [alert] = captured
    assert alert.kind == "run_failure" and alert.severity == "critical"
    assert alert.key == f"run_failure|{result.run_id}"
    assert alert.title == f"{EXECUTION_JOB} failed (rp-x)"
    assert alert.text == "explode: the OPA at http://opa:8181 is unreachable"
    assert alert.fields["run_id"] == result.run_id
    [record] = AuditLog(db_url).records(kind="alert")
    assert record.data["sent"] == ["capture"]


def test_default_statuses_and_the_env_override():
    from pipelines.definitions import SENSOR_DEFAULT_STATUS, defs

    statuses = {s.name: s.default_status for s in defs.sensors}
    assert statuses == {
        "drift_findings_sensor": DefaultSensorStatus.RUNNING,
        "remediation_approval_sensor": DefaultSensorStatus.STOPPED,  # it changes machines
        "approval_expiry_sensor": DefaultSensorStatus.RUNNING,
        "run_failure_alert_sensor": DefaultSensorStatus.RUNNING,
        "compliance_breach_sensor": DefaultSensorStatus.RUNNING,  # alerts only
        "outbound_events_sensor": DefaultSensorStatus.RUNNING,  # announces, changes nothing
        "automation_condition_sensor": DefaultSensorStatus.RUNNING,  # the assets' AutomationConditions
        "event_inbound_sensor": DefaultSensorStatus.STOPPED,  # task.approve changes task state
    }
    env = {"QLRF_SENSOR_STATUS": "remediation_approval_sensor=running, drift_findings_sensor=stopped"}
    overridden = {s.name: s.default_status for s in remediation_sensors(sensor_statuses(SENSOR_DEFAULT_STATUS, env))}
    assert overridden["remediation_approval_sensor"] == DefaultSensorStatus.RUNNING
    assert overridden["drift_findings_sensor"] == DefaultSensorStatus.STOPPED
    with pytest.raises(ValueError, match="QLRF_SENSOR_STATUS: 'approval_sensor=on'"):
        sensor_statuses(SENSOR_DEFAULT_STATUS, {"QLRF_SENSOR_STATUS": "approval_sensor=on"})
    with pytest.raises(ValueError, match="no default status"):
        remediation_sensors({})
