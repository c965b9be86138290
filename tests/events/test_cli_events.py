"""``qlrf events``: status, relay --once with the broker down, bad input exits 2 naming what."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

import pytest

from qlrf.cli import main
from qlrf.events.contract import build
from qlrf.events.outbox import Outbox


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QLRF_POSTGRES_URL", raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("QLRF_NATS_URL", f"nats://127.0.0.1:{port}")  # nothing listens: the broker is down
    return tmp_path


def test_relay_once_with_the_broker_down_keeps_events_and_status_shows_the_lag(home, capsys):
    outbox = Outbox()
    outbox.write([build("image.revoked", key="ami-1", source="t", subject="image/ami-1",
                        time=datetime(2026, 11, 27, tzinfo=UTC), data={"image_id": "ami-1", "platform": "aws"})])
    assert main(["events", "relay", "--once"]) == 1
    assert "delivered 0 event(s); broker unavailable" in capsys.readouterr().out
    assert main(["events", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["pending"] == 1 and status["by_type"] == {"io.resiliencefabric.image.revoked": 1}
    assert status["lag_seconds"] >= 0


def test_bad_input_is_one_line_and_exit_2(home, capsys, monkeypatch):
    assert main(["events", "tail", "--type", "no.such.type"]) == 2
    assert "unknown event type 'io.resiliencefabric.no.such.type'" in capsys.readouterr().err
    monkeypatch.setenv("QLRF_EVENTS_TRUSTED_SOURCES", "just-a-name")
    assert main(["events", "tail"]) == 2
    assert "QLRF_EVENTS_TRUSTED_SOURCES: 'just-a-name' is not <cloudevents source>=<identity>" in capsys.readouterr().err
