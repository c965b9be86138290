"""Alerts with no channel configured are kept (channel "none", with severity), listed, never dropped."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta

from qlrf import cli
from qlrf.alerts.dispatch import Dispatcher
from qlrf.alerts.ledger import NO_CHANNEL, list_alerts
from qlrf.alerts.model import Alert
from qlrf.db import engine_for

NOW = datetime(2026, 11, 20, 7, 0, tzinfo=UTC)
TODAY = date(2026, 11, 30)


def _alert(key: str, severity: str, kind: str = "drift_findings") -> Alert:
    return Alert(kind=kind, severity=severity, title=f"{kind} {key}", text="t", key=key)


def test_an_alert_with_no_channel_is_kept_with_its_severity(tmp_path):
    url = f"sqlite:///{tmp_path / 'rf.db'}"
    dispatcher = Dispatcher.from_env({}, url=url)
    assert not dispatcher.enabled
    result = dispatcher.send(_alert("drift_findings|2026-11-20|aws|ab", "critical"), NOW)
    assert result.kept and not result.sent and not result.failed
    dispatcher.send(_alert("approval_expiring|t-1", "warning", "approval_expiring"), NOW + timedelta(minutes=1))

    rows, matching = list_alerts(engine_for(url))
    assert matching == 2
    assert rows[0] == {"key": "approval_expiring|t-1", "kind": "approval_expiring", "channel": NO_CHANNEL,
                       "severity": "warning", "title": "approval_expiring approval_expiring|t-1",
                       "at": NOW + timedelta(minutes=1)}
    critical, n = list_alerts(engine_for(url), severity="critical")
    assert n == 1 and critical[0]["key"] == "drift_findings|2026-11-20|aws|ab"


def test_below_the_minimum_severity_is_dropped_as_configured(tmp_path):
    url = f"sqlite:///{tmp_path / 'rf.db'}"
    dispatcher = Dispatcher.from_env({"QLRF_ALERT_MIN_SEVERITY": "critical"}, url=url)
    assert dispatcher.send(_alert("k", "info"), NOW).dropped
    assert list_alerts(engine_for(url)) == ([], 0)


def test_a_ledger_from_before_severities_gains_the_columns(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE rf_alert_ledger (key_hash VARCHAR(64) NOT NULL, channel VARCHAR(64) NOT NULL, "
                     "key TEXT NOT NULL, kind VARCHAR(64) NOT NULL, sent_at DATETIME NOT NULL, "
                     "PRIMARY KEY (key_hash, channel))")
        conn.execute("INSERT INTO rf_alert_ledger VALUES ('h', 'slack', 'run_failure|r-0', 'run_failure', "
                     "'2026-11-19 10:00:00')")
    rows, _ = list_alerts(engine_for(f"sqlite:///{path}"))
    assert rows[0]["key"] == "run_failure|r-0" and rows[0]["severity"] is None and rows[0]["title"] is None


def test_qlrf_alerts_list_shows_kept_alerts(isolated_env, capsys):
    dispatcher = Dispatcher.from_env({})  # the task database under QLRF_HOME, as the sensors use it
    dispatcher.send(_alert("compliance_breach|2026-11-20|lon1|prod", "critical", "compliance_breach"), NOW)
    assert cli.main(["alerts", "list"], today=TODAY) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split() == ["AT", "SEVERITY", "KIND", "CHANNEL", "TITLE", "KEY"]
    assert lines[1].split()[:4] == ["2026-11-20T07:00Z", "critical", "compliance_breach", "none"]
    assert "1 kept with no channel configured" in captured.err

    assert cli.main(["alerts", "list", "--json", "--severity", "critical"], today=TODAY) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["channel"] == "none" and row["severity"] == "critical" and row["at"].startswith("2026-11-20T07:00")
    assert cli.main(["alerts", "list", "--json", "--severity", "info"], today=TODAY) == 0
    assert json.loads(capsys.readouterr().out) == []
