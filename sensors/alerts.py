"""run_failure_alert_sensor: every failed run of the code location becomes an alert.

Threshold breaches and revoked images are alerted by drift_findings_sensor, approvals about to
expire by approval_expiry_sensor; the channels and their deduplication live in qlrf/alerts/.
A failed remediation execution (rolled back, blocked, failed) is critical, anything else a warning.
"""


from dagster import DefaultSensorStatus, RunFailureSensorContext, SensorDefinition, run_failure_sensor

from jobs.remediation import EXECUTION_JOB
from qlrf.alerts.model import Alert, run_link
from qlrf.tenancy.scope import acts_for_every_org
from resources.alerts import AlertsResource
from resources.remediation import RemediationResource

SENSOR_NAME = "run_failure_alert_sensor"


def _cause(context: RunFailureSensorContext) -> str:
    """The first failed step's root error, in one line, else the run failure message."""
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        if error is not None:
            while error.cause is not None:
                error = error.cause
            lines = [line for line in error.message.strip().splitlines() if line.strip()]
            text = lines[-1] if lines else error.message.strip()
            name = error.cls_name or ""
            head, sep, rest = text.partition(": ")
            if sep and name and head.endswith(name):  # "dagster._core...Failure: why" -> "why", else "KeyError: why"
                text = rest if name == "Failure" else f"{name}: {rest}"
            return f"{event.step_key}: {text}"
    return (context.failure_event.message or "the run failed").strip()


def run_failure_alert(context: RunFailureSensorContext) -> Alert:
    run = context.dagster_run
    tags = run.tags or {}
    critical = run.job_name == EXECUTION_JOB
    fields = {"job": run.job_name, "run_id": run.run_id}
    for tag in ("dagster/partition", "qlrf/task_id", "qlrf/plan_id", "qlrf/partition", "qlrf/scope"):
        if tags.get(tag):
            fields[tag.split("/", 1)[1]] = tags[tag]
    return Alert(
        kind="run_failure",
        severity="critical" if critical else "warning",
        title=f"{run.job_name} failed" + (f" ({tags['qlrf/plan_id']})" if tags.get("qlrf/plan_id") else ""),
        text=_cause(context)[:1500],
        key=f"run_failure|{run.run_id}",
        fields=fields,
        link=run_link(run.run_id),
    )


def build_run_failure_alert_sensor(
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING, *, name: str = SENSOR_NAME
) -> SensorDefinition:
    @run_failure_sensor(
        name=name,
        default_status=default_status,
        minimum_interval_seconds=30,
        description="Alerts (webhook, Slack, email; deduplicated) on every failed run of this code location.",
    )
    @acts_for_every_org("run_failure_alert_sensor")
    def _run_failure_alert_sensor(context: RunFailureSensorContext, alerts: AlertsResource, remediation: RemediationResource):
        dispatcher = alerts.dispatcher(log=context.log.warning)
        if dispatcher.enabled:  # with no channel the alert is kept in the ledger (channel "none"), not audited
            dispatcher.audit = remediation.audit()
        result = dispatcher.send(run_failure_alert(context))
        if result.failed:
            context.log.warning(f"run failure alert for {context.dagster_run.run_id}: not delivered to {sorted(result.failed)}")

    return _run_failure_alert_sensor


__all__ = ["SENSOR_NAME", "build_run_failure_alert_sensor", "run_failure_alert"]
