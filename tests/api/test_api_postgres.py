"""Approve and reject through the API with the task store and audit log on the machine's PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from tests.api.support import ALICE, BOB, CAROL, T0, client_for
from tests.integration.conftest import pg_url  # noqa: F401 - the fixture: a fresh database, dropped afterwards
from tests.remediation.support import PENDING, Clock, make_plan

pytestmark = pytest.mark.postgres


def test_approve_and_reject_on_postgres(pg_url, tmp_path):  # noqa: F811
    clock = Clock(T0)
    store = TaskStore(pg_url, audit=AuditLog(pg_url), clock=clock)
    assert store.engine.dialect.name == "postgresql"
    client = client_for(store, tmp_path)
    first = store.propose(make_plan("plan-1"), "bob", PENDING)
    second = store.propose(make_plan("plan-2"), "bob", PENDING)
    late = store.propose(make_plan("plan-3"), "carol", PENDING)

    assert client.post(f"/api/v1/tasks/{first.id}/approve", json={"plan_hash": second.plan_hash, "reason": "x"},
                       headers=ALICE).status_code == 409
    assert client.post(f"/api/v1/tasks/{first.id}/approve", json={"plan_hash": first.plan_hash, "reason": "x"},
                       headers=BOB).status_code == 403
    approved = client.post(f"/api/v1/tasks/{first.id}/approve", json={"plan_hash": first.plan_hash, "reason": "CAB-7"},
                           headers=ALICE)
    assert approved.status_code == 200 and approved.json()["approver"] == "alice@example.com"
    rejected = client.post(f"/api/v1/tasks/{second.id}/reject", json={"plan_hash": second.plan_hash, "reason": "no"},
                           headers=CAROL)
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    clock.set(T0 + timedelta(hours=25))
    expired = client.post(f"/api/v1/tasks/{late.id}/approve", json={"plan_hash": late.plan_hash, "reason": "x"}, headers=ALICE)
    assert expired.status_code == 409 and expired.json()["error"] == "approval_expired"

    page = client.get("/api/v1/tasks", params={"state": ["approved", "rejected", "expired"], "limit": 2}, headers=CAROL).json()
    oldest_first = sorted([first.id, second.id, late.id])  # same created_at: the id breaks the tie
    assert [t["id"] for t in page["tasks"]] == oldest_first[:2] and page["total"] == 3 and page["next_offset"] == 2
    assert {t["state"] for t in page["tasks"]} <= {"approved", "rejected", "expired"}
    assert store.approval_record(store.get(first.id)).actor == "alice@example.com"
    assert store.audit.verify().ok
