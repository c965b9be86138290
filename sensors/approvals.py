"""Sensors over the approval tasks: launch approved plans, expire stale ones, warn before expiry.

``remediation_approval_sensor``: every tick, each task in ``TaskStore.approved_waiting()`` (approved
by a human or by the policy, not yet started) becomes a RunRequest for
``remediation_execution_job`` with ``run_key = plan hash``. Dagster never launches a run key twice,
and ``TaskStore.start`` lets exactly one run move the task to running, so a plan executes at most
once, ever; a changed plan has a new hash and needs a new approval. A plan whose maintenance window
is closed now is held back (no request, so its run key stays unused) until a tick inside the window.
This sensor changes machines: it ships STOPPED (see pipelines/definitions.py to enable it).
canary_only as the policy says: a pending task whose canary the gate allows before any approval
(``decision.canary_allowed``) and that has no canary verdict yet becomes a canary-only run
(``canary_only`` config, ``run_key = "canary:<plan hash>"``); its verdict is kept with the task,
and after the approval the execution run starts at the first later wave.

``approval_expiry_sensor``: expires pending tasks past their 24 h (``TaskStore.expire_due``, audited
as ``expiry``), and alerts on approvals expiring within 2 h and on those it expired. It launches
nothing.
"""


from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from jobs.remediation import EXECUTION_JOB, execution_run_config, remediation_execution_job
from qlrf.alerts.dispatch import Dispatcher
from qlrf.alerts.model import Alert
from qlrf.remediation.approvals import Task, TaskStore
from qlrf.remediation.service import canary_waiting
from qlrf.tenancy.scope import acts_for_every_org
from resources.alerts import AlertsResource
from resources.remediation import RemediationResource

APPROVAL_SENSOR = "remediation_approval_sensor"
EXPIRY_SENSOR = "approval_expiry_sensor"
EXPIRY_WARNING = timedelta(hours=2)


# --- approved -> execution ------------------------------------------------------------------------


@dataclass
class ApprovalTick:
    requests: list[RunRequest] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # approved, window closed
    notes: list[str] = field(default_factory=list)


def evaluate_approvals(
    store: TaskStore, *, audit: Any = None, now: datetime | None = None, sensor_name: str = APPROVAL_SENSOR
) -> ApprovalTick:
    """One RunRequest per approved, not yet started task whose maintenance window is open."""
    now = now or datetime.now(UTC)
    tick = ApprovalTick()
    canaries = [t for t in store.list(states="pending_approval") if canary_waiting(t)]
    for task in [*store.approved_waiting(), *canaries]:
        canary = task.state == "pending_approval"
        run_key = f"canary:{task.plan_hash}" if canary else task.plan_hash
        try:
            plan = task.plan()
        except Exception as exc:  # noqa: BLE001 - a corrupt plan must not block the others
            tick.notes.append(f"{task.id}: stored plan unusable, not launched: {exc}")
            continue
        window = plan.spec.maintenance_window
        if window is not None and not window.is_open(now):
            tick.waiting.append(task.id)
            continue
        tick.requests.append(
            RunRequest(
                run_key=run_key,
                job_name=EXECUTION_JOB,
                run_config=execution_run_config(task.plan_hash, canary_only=canary),
                tags={
                    "qlrf/task_id": task.id,
                    "qlrf/plan_id": task.plan_id,
                    "qlrf/plan_hash": task.plan_hash,
                    "qlrf/environment": task.environment,
                    "qlrf/platform": task.platform,
                    "qlrf/approver": task.approver or "",
                    "qlrf/trigger": sensor_name,
                    "qlrf/canary_only": str(canary).lower(),
                },
            )
        )
        if audit is not None:
            audit.append_once("sensor_request", f"sensor:{sensor_name}", run_key, {
                "job": EXECUTION_JOB, "run_key": run_key, "task_id": task.id, "plan_id": task.plan_id,
                "approver": task.approver, "environment": task.environment, "platform": task.platform,
            })
    return tick


def build_approval_sensor(
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    *,
    name: str = APPROVAL_SENSOR,
    minimum_interval_seconds: int = 30,
) -> SensorDefinition:
    @sensor(
        name=name,
        job=remediation_execution_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Approved patch plans -> remediation_execution_job, run key = plan hash (exactly once). Changes "
            "machines: ships stopped."
        ),
    )
    @acts_for_every_org(name)
    def _approval_sensor(context: SensorEvaluationContext, remediation: RemediationResource):
        tick = evaluate_approvals(remediation.store(), audit=remediation.audit(), sensor_name=name)
        for note in tick.notes:
            context.log.warning(note)
        if tick.waiting:
            context.log.info(f"approved, waiting for their maintenance window: {', '.join(tick.waiting)}")
        if tick.requests:
            return SensorResult(run_requests=tick.requests)
        return SkipReason(
            f"no approved plan to launch ({len(tick.waiting)} waiting for a maintenance window)"
            if tick.waiting else "no approved plan to launch"
        )

    return _approval_sensor


# --- expiry and its alerts ------------------------------------------------------------------------


def _task_line(task: Task) -> str:
    return f"{task.plan_id} ({task.environment}/{task.platform}/{task.site or '-'}, risk {task.risk_level})"


def expiring_alert(task: Task, now: datetime) -> Alert:
    left = task.expires_at - now if task.expires_at else timedelta(0)
    minutes = max(0, int(left.total_seconds() // 60))
    return Alert(
        kind="approval_expiring",
        severity="warning",
        title=f"Approval for {task.plan_id} expires in {minutes // 60} h {minutes % 60:02d} min",
        text=(f"{_task_line(task)} has waited for approval since {task.created_at:%Y-%m-%d %H:%M} UTC. "
              f"Approve or reject it on the Approvals page or with `qlrf approvals approve {task.id}` "
              f"before {task.expires_at:%Y-%m-%d %H:%M} UTC."),
        key=f"approval_expiring|{task.id}",
        fields={"task": task.id, "plan_hash": task.plan_hash, "environment": task.environment, "risk": task.risk_level},
    )


def expired_alert(task: Task) -> Alert:
    return Alert(
        kind="approval_expired",
        severity="info",
        title=f"Approval for {task.plan_id} expired",
        text=f"{_task_line(task)} was not approved in time; the next drift finding for that scope proposes a fresh plan.",
        key=f"approval_expired|{task.id}",
        fields={"task": task.id, "plan_hash": task.plan_hash, "environment": task.environment},
    )


@dataclass
class ExpiryTick:
    expired: list[Task] = field(default_factory=list)
    expiring: list[Task] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def evaluate_expiry(
    store: TaskStore,
    *,
    dispatcher: Dispatcher | None = None,
    now: datetime | None = None,
    warn_within: timedelta = EXPIRY_WARNING,
    actor: str = f"sensor:{EXPIRY_SENSOR}",
    log: Callable[[str], None] = lambda _m: None,
) -> ExpiryTick:
    now = now or datetime.now(UTC)
    # The store judges expiry by the database clock; `now` only words the alerts.
    tick = ExpiryTick(expired=store.expire_due(actor=actor), expiring=store.expiring_within(warn_within))
    tick.alerts = [expiring_alert(t, now) for t in tick.expiring] + [expired_alert(t) for t in tick.expired]
    for task in tick.expired:
        log(f"expired {task.id} ({task.plan_id})")
    if dispatcher is not None:  # with no channel it keeps them (channel "none")
        dispatcher.send_all(tick.alerts, now)
    return tick


def build_expiry_sensor(
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    *,
    name: str = EXPIRY_SENSOR,
    minimum_interval_seconds: int = 300,
) -> SensorDefinition:
    @sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Expires pending approvals after 24 h (audited) and alerts on those expiring within 2 h.",
    )
    @acts_for_every_org(name)
    def _expiry_sensor(context: SensorEvaluationContext, remediation: RemediationResource, alerts: AlertsResource):
        audit = remediation.audit()
        tick = evaluate_expiry(
            remediation.store(), dispatcher=alerts.dispatcher(audit=audit, log=context.log.error, strict=False),
            actor=f"sensor:{name}", log=context.log.info,
        )
        return SkipReason(f"expired {len(tick.expired)} task(s); {len(tick.expiring)} expiring within 2 h")

    return _expiry_sensor


__all__ = [
    "APPROVAL_SENSOR",
    "EXPIRY_SENSOR",
    "ApprovalTick",
    "ExpiryTick",
    "build_approval_sensor",
    "build_expiry_sensor",
    "evaluate_approvals",
    "evaluate_expiry",
]
