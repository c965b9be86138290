"""The event contract (schemas, stable ids, parsing) and the transactional outbox under the task store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import func, select

from qlrf.events.contract import (
    ALL_TYPES,
    INBOUND,
    OUTBOUND,
    EventContractError,
    build,
    parse,
    schema,
    validate_data,
)
from qlrf.events.outbox import Outbox, outbox_table, task_listener
from qlrf.remediation.approvals import PlanHashMismatch, SelfApprovalRefused, TaskStore
from qlrf.remediation.audit import AuditLog
from tests.remediation.support import ALLOW, DENY, PENDING, Clock, make_plan

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
SCHEMAS = Path(__file__).parents[2] / "qlrf" / "events" / "schemas"


@pytest.fixture()
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'tasks.db'}"


def _store(url, clock, *extra):
    outbox = Outbox(url, clock=clock)
    return TaskStore(url, audit=AuditLog(url), clock=clock, on_change=[task_listener(outbox), *extra]), outbox


def _check_against_schema(row) -> dict:
    """A stored event read back as structured JSON, its envelope and data checked against the contract."""
    body = json.loads(row.event.body)
    assert body["specversion"] == "1.0" and body["type"].startswith("io.resiliencefabric.")
    assert body["dataschema"] == schema(row.event.short)["$id"] and body["datacontenttype"] == "application/json"
    Draft202012Validator(schema(row.event.short)).validate(body["data"])
    assert parse(row.event.body).id == body["id"] == row.event.id
    return body


def test_one_valid_schema_file_per_type_and_nothing_else():
    assert sorted(p.stem for p in SCHEMAS.glob("*.json")) == sorted(ALL_TYPES)
    for short in ALL_TYPES:
        Draft202012Validator.check_schema(schema(short))
        assert schema(short)["$id"].endswith(f"/{short}/v1.json")
        assert schema(short)["additionalProperties"] is False  # no VM list or secret can ride along
    assert set(OUTBOUND).isdisjoint(INBOUND)


def test_task_store_changes_emit_schema_valid_events_in_order(url):
    clock = Clock(T0)
    store, outbox = _store(url, clock)
    pending = store.propose(make_plan("p1"), "sensor:drift", PENDING)
    clock.set(T0 + timedelta(minutes=5))
    store.approve(pending.id, pending.plan_hash, "alice", "reviewed")
    store.start(pending.id)
    store.finish(pending.id, "rolled_back", "canary failed")
    denied = store.propose(make_plan("p2", environment="dev"), "sensor:drift", DENY)
    expiring = store.propose(make_plan("p3"), "sensor:drift", PENDING)
    clock.set(T0 + timedelta(hours=25))
    store.expire_due()

    rows = outbox.pending()
    bodies = [_check_against_schema(r) for r in rows]
    assert [(b["type"].removeprefix("io.resiliencefabric."), b["subject"]) for b in bodies] == [
        ("plan.proposed", f"task/{pending.id}"), ("task.approved", f"task/{pending.id}"),
        ("rollback.performed", f"task/{pending.id}"), ("plan.proposed", f"task/{denied.id}"),
        ("task.rejected", f"task/{denied.id}"), ("plan.proposed", f"task/{expiring.id}"),
        ("task.expired", f"task/{expiring.id}"),
    ]
    approved = bodies[1]["data"]
    assert approved == {"task_id": pending.id, "plan_hash": pending.plan_hash, "from": "pending_approval",
                        "to": "approved", "reason": "reviewed", "actor": "alice"}
    assert bodies[0]["data"]["targets"] >= 1 and bodies[0]["source"] == "/resiliencefabric/tasks"
    assert bodies[1]["time"].startswith("2026-11-27T10:05:00")  # the injected clock, not the wall clock


def test_auto_approval_emits_task_approved_by_policy(url):
    store, outbox = _store(url, Clock(T0))
    task = store.propose(make_plan("auto", environment="dev"), "sensor:drift", ALLOW)
    rows = outbox.pending()
    assert [r.event.short for r in rows] == ["plan.proposed", "task.approved"]
    assert rows[1].event.data["actor"] == "policy:auto" and rows[1].event.subject == f"task/{task.id}"


def test_a_rolled_back_change_writes_no_event(url):
    clock = Clock(T0)

    def boom(conn, kind, actor, subject, data):
        if kind == "approval":
            raise RuntimeError("the database went away mid-change")

    store, outbox = _store(url, clock, boom)
    task = store.propose(make_plan("p1"), "sensor:drift", PENDING)
    before = [r.event.id for r in outbox.pending()]
    with pytest.raises(RuntimeError, match="went away"):
        store.approve(task.id, task.plan_hash, "alice", "ok")
    assert store.get(task.id).state == "pending_approval"
    assert [r.event.id for r in outbox.pending()] == before and len(before) == 1  # plan.proposed only
    # refused decisions change nothing and emit nothing either
    with pytest.raises(PlanHashMismatch):
        store.approve(task.id, "sha256:" + "0" * 64, "alice", "ok")
    with pytest.raises(SelfApprovalRefused):
        store.approve(task.id, task.plan_hash, "sensor:drift", "ok")
    with outbox.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox_table)).scalar_one() == 1


def test_ids_are_stable_and_the_outbox_keeps_one_copy(url):
    outbox = Outbox(url, clock=Clock(T0))
    data = {"date": "2026-11-27", "platform": "aws", "site": "lon1", "environment": "prod", "compliance_score": 71.5,
            "floor": 90.0, "vms": 40, "non_compliant_vms": 12}
    one = build("compliance.breached", key="2026-11-27|aws|lon1|prod", source="sensors/compliance",
                subject="site/lon1/prod/aws", data=data, time=T0)
    again = build("compliance.breached", key="2026-11-27|aws|lon1|prod", source="sensors/compliance",
                  subject="site/lon1/prod/aws", data=data, time=T0 + timedelta(hours=1))
    assert one.id == again.id
    assert outbox.write([one]) == 1 and outbox.write([again]) == 0
    status = outbox.status(now=T0 + timedelta(seconds=30))
    assert status["pending"] == 1 and status["lag_seconds"] == 30.0


@pytest.mark.parametrize(("body", "why"), [
    (b"not json at all", "not JSON"),
    (b'{"hello": "world"}', "not a CloudEvents 1.0"),
    (json.dumps({"specversion": "1.0", "id": "x1", "source": "/cmdb", "type": "com.other.thing", "data": {}}).encode(),
     "unknown event type 'com.other.thing'"),
    (json.dumps({"specversion": "1.0", "id": "x2", "source": "/cmdb", "type": "io.resiliencefabric.asset.changed",
                 "data": {"platfrom": "aws"}}).encode(), "fails its schema"),
    (json.dumps({"specversion": "1.0", "id": "", "source": "/cmdb", "type": "io.resiliencefabric.asset.changed",
                 "data": {"platform": "aws"}}).encode(), "invalid CloudEvent attributes"),
])
def test_parse_refuses_bad_input_naming_what(body, why):
    with pytest.raises(EventContractError, match=why):
        parse(body, "test")


def test_builder_refuses_secrets_and_vm_lists():
    with pytest.raises(EventContractError, match="alert.raised .* fails its schema"):
        build("alert.raised", key="k", source="alerts", subject="site/x", time=T0,
              data={"key": "k", "kind": "x", "severity": "info", "title": "t", "token": "hunter2"})
    with pytest.raises(EventContractError, match="fails its schema at vms"):
        validate_data("inventory.discovered", {"date": "2026-11-27", "platform": "aws", "vms": ["i-1", "i-2"]})


def test_warehouse_derived_events_match_their_schemas(url):
    from qlrf.events.emit import compliance_breached, drift_detected
    from qlrf.remediation.findings import Finding

    finding = Finding("drift_threshold", "2026-11-27", "aws", "lon1", "prod", 23.5, 10.0, 40, 0,
                      tuple(f"i-{n}" for n in range(40)))
    rows = [{"site": "lon1", "environment": "prod", "compliance_score": 71.5, "floor": 90.0, "vms": 40,
             "non_compliant_vms": 12}]
    outbox = Outbox(url, clock=Clock(T0))
    events = [*drift_detected([finding], T0), *compliance_breached("2026-11-27", "aws", rows, T0)]
    assert outbox.write(events) == 2 and outbox.write(drift_detected([finding], T0)) == 0  # re-read: nothing new
    bodies = [_check_against_schema(r) for r in outbox.pending()]
    assert [b["subject"] for b in bodies] == ["site/lon1/prod/aws", "site/lon1/prod/aws"]
    assert "i-0" not in json.dumps(bodies)  # ids and figures, never the VM list
