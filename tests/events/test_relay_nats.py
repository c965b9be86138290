"""The relay against the real JetStream on 127.0.0.1:4222: ack-gated delivery, outage, de-duplication."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from qlrf.events.contract import build
from qlrf.events.outbox import Outbox
from qlrf.events.relay import Relay

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.slow


def _events(n: int, start: int = 0):
    return [build("drift.detected", key=f"2026-11-27|aws|site{i % 7}|prod|{i}", source="sensors/findings",
                  subject=f"site/site{i % 7}/prod/aws", time=T0,
                  data={"date": "2026-11-27", "platform": "aws", "site": f"site{i % 7}", "environment": "prod",
                        "drift_score": 12.5, "threshold": 10.0, "vms": i})
            for i in range(start, start + n)]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_broker_down_events_wait_then_go_once_in_order(tmp_path, nats_stream):
    outbox = Outbox(f"sqlite:///{tmp_path / 'ob.db'}")
    outbox.write(_events(300))
    down = replace(nats_stream, url=f"nats://127.0.0.1:{_closed_port()}", connect_timeout=0.5)
    failed = Relay(outbox, down).drain_once()
    assert failed.delivered == 0 and "unreachable" in failed.errors[0]
    assert outbox.status()["pending"] == 300  # nothing marked without an ack

    outbox.write(_events(200, start=300))  # produced during the outage
    result = Relay(outbox, nats_stream, batch=128).drain_once()
    assert result.delivered == 500 and not result.errors and outbox.status()["pending"] == 0

    # A relay that crashed after the broker acked but before marking re-sends: JetStream drops the copies.
    rows = outbox.since(T0.replace(year=2000))
    again = nats_stream.publish([(r.seq, r.event) for r in rows[:50]])
    assert [b for _, b in again] == [r.broker_seq for r in rows[:50]]

    seen = nats_stream.fetch(0, 1000, wait=0.5)
    ids = [json.loads(body)["id"] for _, body in seen]
    assert len(ids) == 500 and len(set(ids)) == 500  # exactly once, none lost
    assert ids == [r.event.id for r in rows]  # outbox order, hence in order per subject
    per_subject = [json.loads(b)["data"]["vms"] for _, b in seen if json.loads(b)["subject"] == "site/site3/prod/aws"]
    assert per_subject == sorted(per_subject)


def test_tail_filters_by_type(tmp_path, nats_stream):
    outbox = Outbox(f"sqlite:///{tmp_path / 'ob.db'}")
    other = build("image.revoked", key="ami-1", source="sensors/findings", subject="image/ami-1", time=T0,
                  data={"image_id": "ami-1", "platform": "aws", "affected_vms": 3})
    outbox.write([*_events(3), other])
    Relay(outbox, nats_stream).drain_once()
    only = nats_stream.fetch(0, 10, subject=f"{nats_stream.prefix}.image.revoked", wait=0.3)
    assert [json.loads(b)["id"] for _, b in only] == [other.id]


def test_an_event_the_broker_refuses_holds_back_its_subject_only(tmp_path):
    """JetStream refuses one event (over the stream's max message size): the later events of that
    subject are not sent (they would overtake it), the other subjects are delivered, and the next
    pass finds exactly the held-back ones still waiting."""
    import asyncio
    import uuid

    import nats
    from nats.js.api import StreamConfig

    from qlrf.events.transports.nats import NatsTransport, rounds

    tag = uuid.uuid4().hex[:10]
    transport = NatsTransport("nats://127.0.0.1:4222", stream=f"T_{tag}", prefix=f"t{tag}.events", connect_timeout=1.0)

    async def create() -> None:
        nc = await nats.connect(transport.url, connect_timeout=1)
        try:
            await nc.jetstream().add_stream(StreamConfig(name=transport.stream, subjects=[f"{transport.prefix}.>"],
                                                          max_msg_size=4096))
        finally:
            await nc.close()

    try:
        asyncio.run(create())
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"NATS JetStream not reachable: {exc}")
    try:
        events = _events(21)
        big = build("alert.raised", key="big", source="alerts", subject=events[3].subject, time=T0,
                    data={"key": "k", "kind": "drift", "severity": "warning", "title": "big", "fields": {"x": "y" * 6000}})
        events.insert(4, big)  # subject site3: events 3, big, 10, 17 in outbox order
        assert [len(r) for r in rounds([(i, e) for i, e in enumerate(events)])] == [7, 7, 7, 1]
        outbox = Outbox(f"sqlite:///{tmp_path / 'ob.db'}")
        outbox.write(events)
        result = Relay(outbox, transport).drain_once()
        assert result.delivered == 19 and "not acked" in result.errors[0]
        waiting = [r.event.id for r in outbox.pending()]
        site3 = [e.id for e in events if e.subject == events[3].subject]
        assert waiting == site3[1:]  # the refused event and the two after it; site3's first went out
        seen = [json.loads(body) for _, body in transport.fetch(0, 100, wait=0.5)]
        assert len(seen) == 19 and [s["id"] for s in seen if s["subject"] == events[3].subject] == site3[:1]
    finally:
        transport.delete_stream()
