"""A sensor's alert with no channel configured is kept in the ledger (channel "none"), not dropped."""

from __future__ import annotations

from dagster import DagsterEventType, DagsterInstance, Failure, build_run_status_sensor_context, job, op

from qlrf.alerts.ledger import list_alerts
from qlrf.db import engine_for
from resources.alerts import AlertsResource
from resources.remediation import RemediationResource
from sensors.alerts import build_run_failure_alert_sensor


def test_a_failed_run_with_no_alert_channel_is_kept_with_its_severity(db_url):
    @op
    def explode():
        raise Failure("the estate directory is missing")

    @job(name="platform_daily_job")
    def failing():
        explode()

    instance = DagsterInstance.ephemeral()
    result = failing.execute_in_process(instance=instance, raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    with build_run_status_sensor_context(
        sensor_name="run_failure_alert_sensor", dagster_event=failure, dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"alerts": AlertsResource(database_url=db_url), "remediation": RemediationResource(database_url=db_url)},
    ) as status_context:
        build_run_failure_alert_sensor()(status_context.for_run_failure())  # used to return: "no channel"

    rows, matching = list_alerts(engine_for(db_url))
    assert matching == 1
    assert {k: rows[0][k] for k in ("key", "kind", "channel", "severity", "title")} == {
        "key": f"run_failure|{result.run_id}", "kind": "run_failure", "channel": "none", "severity": "warning",
        "title": "platform_daily_job failed"}
