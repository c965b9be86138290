from __future__ import annotations

import uuid

import pytest

from qlrf.events.transports.nats import NatsTransport, TransportUnavailable

NATS_URL = "nats://127.0.0.1:4222"


@pytest.fixture()
def nats_stream():
    """A uniquely named stream on the shared NATS (deleted afterwards); skips when NATS is not running."""
    tag = uuid.uuid4().hex[:10]
    transport = NatsTransport(NATS_URL, stream=f"T_{tag}", prefix=f"t{tag}.events", connect_timeout=1.0)
    try:
        transport.fetch(0, 1, wait=0.1)  # creates the stream
    except TransportUnavailable as exc:
        pytest.skip(f"NATS JetStream not reachable at {NATS_URL}: {exc}")
    yield transport
    transport.delete_stream()
