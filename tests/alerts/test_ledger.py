"""The alert ledger: created with the other tables, pruned past its retention (clock passed in)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select

from qlrf.alerts.dispatch import Dispatcher
from qlrf.alerts.ledger import DEFAULT_RETENTION, AlertLedger, MemoryLedger
from qlrf.alerts.model import Alert, AlertConfigError
from qlrf.db import alert_ledger, engine_for, metadata, read_tx

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@dataclass
class ListChannel:
    """A channel that keeps what it is given: the dispatcher and ledger are under test, not delivery."""

    name: str = "list"
    sent: list[str] = field(default_factory=list)

    def send(self, alert: Alert) -> None:
        self.sent.append(alert.key)

    def describe(self) -> str:
        return "list()"


def _alert(key: str) -> Alert:
    return Alert(kind="run_failure", severity="critical", title="t", text="x", key=key)


def _keys(ledger: AlertLedger) -> set[str]:
    with read_tx(ledger.engine) as conn:
        return set(conn.execute(select(alert_ledger.c.key)).scalars())


def test_the_ledger_table_is_created_with_the_task_and_audit_tables(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'q.db'}")
    assert alert_ledger.metadata is metadata
    assert {"rf_tasks", "rf_audit_log", "rf_audit_head", "rf_alert_ledger"} <= set(inspect(engine).get_table_names())
    assert "ix_rf_alert_ledger_sent_at" in {ix["name"] for ix in inspect(engine).get_indexes("rf_alert_ledger")}


def test_explicit_prune_deletes_only_records_older_than_the_retention(tmp_path):
    ledger = AlertLedger(f"sqlite:///{tmp_path / 'q.db'}", retention=timedelta(days=30))
    ledger.mark("old", "webhook", "run_failure", NOW - timedelta(days=31))
    ledger.mark("edge", "webhook", "run_failure", NOW - timedelta(days=30))
    ledger.mark("new", "webhook", "run_failure", NOW - timedelta(days=1))
    assert ledger.prune(NOW) == 1
    assert _keys(ledger) == {"edge", "new"}
    assert ledger.last_sent("old", "webhook") is None
    assert ledger.last_sent("new", "webhook") == NOW - timedelta(days=1)
    assert ledger.prune(NOW) == 0


def test_the_dispatcher_prunes_when_it_records_new_deliveries(tmp_path):
    ledger = AlertLedger(f"sqlite:///{tmp_path / 'q.db'}", retention=timedelta(days=7))
    channel = ListChannel()
    dispatcher = Dispatcher([channel], ledger, window=timedelta(hours=6))
    dispatcher.send(_alert("first"), now=NOW)
    dispatcher.send(_alert("second"), now=NOW + timedelta(days=3))
    assert _keys(ledger) == {"first", "second"}
    dispatcher.send(_alert("third"), now=NOW + timedelta(days=8))
    assert _keys(ledger) == {"second", "third"}
    assert channel.sent == ["first", "second", "third"]


def test_a_suppressed_alert_records_nothing_and_prunes_nothing(tmp_path):
    ledger = AlertLedger(f"sqlite:///{tmp_path / 'q.db'}", retention=timedelta(days=1))
    dispatcher = Dispatcher([ListChannel()], ledger, window=timedelta(hours=6))
    ledger.mark("stale", "other", "run_failure", NOW - timedelta(days=2))
    dispatcher.send(_alert("k"), now=NOW)
    assert _keys(ledger) == {"k"}
    ledger.mark("stale", "other", "run_failure", NOW - timedelta(days=2))
    assert dispatcher.send(_alert("k"), now=NOW + timedelta(hours=1)).suppressed == ["list"]
    assert _keys(ledger) == {"k", "stale"}


def test_the_memory_ledger_prunes_the_same_way():
    ledger = MemoryLedger(retention=timedelta(days=2))
    ledger.mark("old", "c", "k", NOW - timedelta(days=3))
    ledger.mark("new", "c", "k", NOW)
    assert ledger.prune(NOW) == 1
    assert ledger.last_sent("old", "c") is None and ledger.last_sent("new", "c") == NOW


def test_retention_shorter_than_the_window_is_refused():
    with pytest.raises(AlertConfigError, match="QLRF_ALERT_RETENTION_DAYS"):
        Dispatcher([ListChannel()], MemoryLedger(retention=timedelta(hours=1)), window=timedelta(hours=6))
    with pytest.raises(ValueError, match="positive"):
        MemoryLedger(retention=timedelta(0))


def test_retention_comes_from_the_environment(tmp_path):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    configured = Dispatcher.from_env({"QLRF_ALERT_RETENTION_DAYS": "7"}, url=url, channels=[ListChannel()])
    assert configured.ledger.retention == timedelta(days=7)
    default = Dispatcher.from_env({}, url=url, channels=[ListChannel()])
    assert default.ledger.retention == DEFAULT_RETENTION == timedelta(days=30)
    long_window = Dispatcher.from_env({"QLRF_ALERT_DEDUP_HOURS": str(24 * 40)}, url=url, channels=[ListChannel()])
    assert long_window.ledger.retention == timedelta(days=40)
    with pytest.raises(AlertConfigError, match="QLRF_ALERT_RETENTION_DAYS='x'"):
        Dispatcher.from_env({"QLRF_ALERT_RETENTION_DAYS": "x"}, url=url, channels=[ListChannel()])
