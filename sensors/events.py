"""event_inbound_sensor: outside events (image pipeline, CMDB, ChatOps) start work here.

The cursor is the inbound stream's sequence: a tick reads the messages after it (nothing is acked on
the broker, the cursor is the only consumer state), maps them with :func:`qlrf.events.inbound.process`
and returns its run requests (run key ``<source>:<id>``, so a redelivered event never runs twice)
with the new cursor in the same :class:`SensorResult`: Dagster persists the cursor only with the
tick's run requests. Refused events are logged with their id, written to the outbox as
``event.rejected`` and skipped; they never stop the sensor. A broker that cannot be reached skips
the tick and keeps the cursor.

Ships STOPPED (``task.approve`` changes task state): start it in the UI or with
``dagster sensor start event_inbound_sensor``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from qlrf.events.inbound import approver_for, process, record_rejections
from qlrf.events.outbox import Outbox
from qlrf.events.transports.nats import TransportUnavailable
from qlrf.events.wiring import evented_store
from qlrf.platforms import PLATFORMS
from qlrf.tenancy.scope import acts_for_every_org
from resources.events import EventsResource
from resources.remediation import RemediationResource

SENSOR_NAME = "event_inbound_sensor"
EVENTS_PER_TICK = 200


def build_event_inbound_sensor(default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
                               clock=lambda: datetime.now(UTC)) -> SensorDefinition:
    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=30,
        default_status=default_status,
        description="Inbound CloudEvents (image.published, asset.changed, task.approve) -> runs / approvals; "
                    "cursor = stream sequence, run key = source:id; refused events recorded as event.rejected.",
    )
    @acts_for_every_org("event_inbound_sensor")
    def _event_inbound_sensor(context: SensorEvaluationContext, events: EventsResource, remediation: RemediationResource):
        settings = events.settings()
        after = int(context.cursor or 0)
        try:
            messages = settings.inbound().fetch(after, EVENTS_PER_TICK, wait=0.5)
        except TransportUnavailable as exc:
            return SkipReason(f"inbound broker unavailable, cursor kept at {after}: {exc}")
        now = clock()
        url = remediation.database_url
        store = evented_store(url, audit=remediation.audit())
        tick = process(messages, cursor=after, today=now.date().isoformat(), approve=approver_for(store),
                       trusted=settings.trusted, platforms=PLATFORMS)
        for rejection in tick.rejections:
            context.log.warning(rejection.line())
        record_rejections(Outbox(url, clock=clock), tick.rejections, now)
        for task_id in tick.approved:
            context.log.info(f"task {task_id} approved by an inbound task.approve event")
        requests = [RunRequest(run_key=r.run_key, job_name=r.job_name, partition_key=r.partition_key, tags=r.tags)
                    for r in tick.runs]
        return SensorResult(run_requests=requests, cursor=str(tick.cursor))

    return _event_inbound_sensor
