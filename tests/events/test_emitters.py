"""The emitters the remediation loop, the alerts and DR drills write into the outbox:
wave.completed in the wave_end record's transaction, alert.raised once per key and dedup window,
dr.drill.completed with the drill's worst RTO and RPO. Every event passes its schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from qlrf.alerts.dispatch import Dispatcher
from qlrf.alerts.model import Alert
from qlrf.dr.service import announce
from qlrf.events.contract import short_type, validate_data
from qlrf.events.outbox import Outbox
from qlrf.events.wiring import EventedAudit
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.gate import Gate
from qlrf.remediation.service import plan_decision, run_approved
from tests.remediation.support import NOW, Clock
from tests.remediation.test_canary_first import Recorder
from tests.sensors.support import make_plan


def events_of(outbox: Outbox, short: str) -> list[dict]:
    found = [r.event.data for r in outbox.since(datetime(2000, 1, 1, tzinfo=UTC)) if short_type(r.event.type) == short]
    for data in found:
        validate_data(short, data, short)
    return found


@pytest.fixture()
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'tasks.db'}"


def test_each_finished_wave_is_announced_with_its_counts(url):
    store = TaskStore(url, audit=AuditLog(url), clock=Clock(NOW))
    gate = Gate.embedded()
    plan = make_plan("rp-waves", instances=3, environment="dev", autonomy_mode="full_auto")
    task = store.propose(plan, "sensor:drift_findings_sensor", plan_decision(gate, plan, requested_by="sensor:x", fleet_size=100))
    if task.state == "pending_approval":
        store.approve(task.id, task.plan_hash, "alice@example.com", "ok")
    outbox = Outbox(url, clock=lambda: NOW)
    sick = Recorder(sick_wave=1)
    outcome = run_approved(store, task.plan_hash, driver_for=lambda _p: sick, gate=gate,
                           audit=EventedAudit(store.audit, outbox), actor="dagster:run-1", now=NOW)
    assert outcome.state == "rolled_back"
    waves = events_of(outbox, "wave.completed")
    ends = store.audit.records(subject=task.id, kind="wave_end")
    assert [w["wave"] for w in waves] == [r.data["wave"] for r in ends] == [0, 1]
    assert [(w["succeeded"], w["failed"]) for w in waves] == [(1, 0), (0, 1)]
    assert all(w["task_id"] == task.id and w["plan_hash"] == task.plan_hash for w in waves)
    assert store.audit.verify().ok


def test_an_alert_is_announced_once_per_key_and_window(url):
    outbox = Outbox(url)
    dispatcher = Dispatcher([], window=timedelta(hours=6), outbox=outbox)
    alert = Alert(kind="compliance_breach", severity="critical", title="aws 2026-11-20: 2 site(s) below their floor",
                  text="...", key="compliance_breach|2026-11-20|aws|abc", fields={"platform": "aws", "scopes": 2})
    for minutes in (0, 5, 60):
        dispatcher.send(alert, NOW + timedelta(minutes=minutes))
    dispatcher.send(alert, NOW + timedelta(hours=7))  # the next window: raised again
    raised = events_of(outbox, "alert.raised")
    assert len(raised) == 2 and raised[0]["key"] == alert.key and raised[0]["fields"]["scopes"] == 2


def test_a_finished_drill_is_announced_with_its_worst_rto_and_rpo(url):
    outbox = Outbox(url)
    plan = SimpleNamespace(metadata=SimpleNamespace(site="lon1", platform="aws"))
    rows = [{"site": "lon1", "rto_seconds": 120.0, "rpo_achieved_seconds": 3600.0},
            {"site": "lon1", "rto_seconds": 300.0, "rpo_achieved_seconds": 60.0},
            {"site": "lon1", "rto_seconds": None, "rpo_achieved_seconds": None}]
    result = SimpleNamespace(drill_id="drill-lon1-1", plan=plan, rows=rows, outcome="failed")
    announce(outbox, result, NOW)
    announce(outbox, result, NOW)  # the same drill: one event
    [done] = events_of(outbox, "dr.drill.completed")
    assert done == {"drill_id": "drill-lon1-1", "site": "lon1", "platform": "aws", "passed": False,
                    "rto_seconds": 300.0, "rpo_seconds": 3600.0}
