"""event_inbound_sensor over a real JetStream stream: mapping, run keys, cursor, refusals on the record."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from dagster import DagsterInstance, build_sensor_context

from qlrf.events.outbox import Outbox
from qlrf.events.wiring import evented_store
from qlrf.remediation.audit import AuditLog
from resources.events import EventsResource
from resources.remediation import RemediationResource
from sensors.events import build_event_inbound_sensor
from tests.events.conftest import nats_stream  # noqa: F401, F811 - the shared fixture
from tests.remediation.support import PENDING, make_plan
from tests.tenancy.support import grant

NOW = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
BOT = "/chatops/slack-bot"
pytestmark = pytest.mark.slow


def _ce(etype: str, eid: str, data, source: str = BOT) -> bytes:
    return json.dumps({"specversion": "1.0", "id": eid, "source": source, "type": f"io.resiliencefabric.{etype}",
                       "subject": "x", "datacontenttype": "application/json", "data": data}).encode()


def test_inbound_events_map_to_work_and_refusals_change_nothing(db_url, nats_stream):  # noqa: F811
    store = evented_store(db_url, audit=AuditLog(db_url))
    task = store.propose(make_plan("p1"), "sensor:drift", PENDING)
    other = store.propose(make_plan("p2"), "chatops:ops-team", PENDING)  # requested by the bot's own identity
    grant("chatops:ops-team", "approver@*", url=db_url)  # the bot's identity is an approver (issue 14)
    subj = f"{nats_stream.prefix}.in"
    bodies = [
        _ce("image.published", "img-1", {"image_id": "ami-9", "platform": "aws"}, source="/pipelines/images"),
        b"{not json",
        _ce("something.else", "u-1", {}),
        _ce("asset.changed", "a-1", {"platfrom": "aws"}, source="/cmdb"),           # fails its schema
        _ce("task.approve", "ap-1", {"task_id": task.id, "plan_hash": "sha256:" + "0" * 64, "reason": "lgtm"}),
        _ce("task.approve", "ap-2", {"task_id": task.id, "plan_hash": task.plan_hash, "reason": "lgtm"},
            source="/someone/else"),                                                 # not a trusted source
        _ce("task.approve", "ap-3", {"task_id": other.id, "plan_hash": other.plan_hash, "reason": "mine"}),
        _ce("plan.proposed", "o-1", {}),                                             # outbound type sent inbound
        _ce("asset.changed", "a-2", {"platform": "gcp", "asset_id": "vm-7"}, source="/cmdb"),
        _ce("task.approve", "ap-4", {"task_id": task.id, "plan_hash": task.plan_hash, "reason": "lgtm"}),
    ]
    seqs = [nats_stream.put_raw(subj, body) for body in bodies]

    resources = {
        "events": EventsResource(nats_url=nats_stream.url, inbound_stream=nats_stream.stream,
                                 inbound_prefix=nats_stream.prefix, trusted_sources=f"{BOT}=chatops:ops-team"),
        "remediation": RemediationResource(database_url=db_url),
    }
    sensor = build_event_inbound_sensor(clock=lambda: NOW)
    context = build_sensor_context(instance=DagsterInstance.ephemeral(), resources=resources)
    result = sensor(context)

    assert result.cursor == str(seqs[-1])  # moved past every message, refused or not...
    assert context.cursor is None          # ...but only through the result (persisted with the run requests)
    runs = [(r.run_key, r.job_name, r.partition_key) for r in result.run_requests]
    assert runs == [("/pipelines/images:img-1", "golden_images_job", "2026-11-27"),
                    ("/cmdb:a-2", "platform_daily_job", "2026-11-27|gcp")]
    assert store.get(task.id).state == "approved" and store.get(task.id).approver == "chatops:ops-team"
    assert store.get(other.id).state == "pending_approval"  # the requester never approves its own plan

    rejected = [r.event for r in Outbox(db_url).pending() if r.event.short == "event.rejected"]
    reasons = {e.data["event_id"]: e.data["reason"] for e in rejected}
    assert set(reasons) == {"?", "u-1", "a-1", "ap-1", "ap-2", "ap-3", "o-1"}
    assert "not JSON" in reasons["?"] and "unknown event type" in reasons["u-1"]
    assert "fails its schema" in reasons["a-1"] and "plan hash" in reasons["ap-1"]
    assert "not a trusted ChatOps source" in reasons["ap-2"] and "self-approval" in reasons["ap-3"]
    assert "is not accepted here" in reasons["o-1"]

    # The next tick starts at the result's cursor: nothing is read twice, nothing runs twice.
    again = sensor(build_sensor_context(instance=DagsterInstance.ephemeral(), resources=resources, cursor=result.cursor))
    assert again.run_requests == [] and again.cursor == result.cursor


def test_broker_down_skips_and_keeps_the_cursor(db_url):
    resources = {"events": EventsResource(nats_url="nats://127.0.0.1:9"),
                 "remediation": RemediationResource(database_url=db_url)}
    context = build_sensor_context(instance=DagsterInstance.ephemeral(), resources=resources, cursor="41")
    result = build_event_inbound_sensor(clock=lambda: NOW)(context)
    assert "cursor kept at 41" in result.skip_message
