"""The HTTP API's roles beyond the attacks: a viewer's ask is answered read-only, an operator's may
propose, reading a task needs a role in its organisation."""

from __future__ import annotations

from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.tenancy.roles import Grant
from qlrf.tenancy.store import GrantStore
from tests.api.support import BOB, CAROL, client_for
from tests.remediation.support import PENDING, make_plan
from tests.tenancy.support import TEST_ADMIN


class Recorded:
    """An `ask` that records how it was called and answers like the orchestrator's JSON."""

    def __init__(self):
        self.calls: list[dict] = []

    def __call__(self, intent, **kwargs):
        self.calls.append(kwargs)

        class Result:
            def as_dict(self):
                return {"intent": intent}
        return Result()


def _setup(tmp_path):
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    audit = AuditLog(url)
    store = TaskStore(url, audit=audit)
    grants = GrantStore(engine=audit.engine, audit=audit)
    grants.grant("bob", Grant("viewer", "unassigned"), by=TEST_ADMIN)
    grants.grant("carol", Grant("operator", "unassigned"), by=TEST_ADMIN)
    return store, audit


def test_a_viewer_asks_read_only_and_an_operator_may_propose(tmp_path):
    store, audit = _setup(tmp_path)
    ask = Recorded()
    client = client_for(store, tmp_path, grants=False, ask=ask)
    assert client.post("/api/v1/ai/execute", headers=BOB, json={"intent": "patch syd1 dev"}).status_code == 200
    assert client.post("/api/v1/ai/execute", headers=CAROL, json={"intent": "patch syd1 dev"}).status_code == 200
    why, record = ask.calls[0]["refuse_proposals"]
    assert "bob may not ask in unassigned: that needs the operator role, they hold viewer" in why
    assert "refuse_proposals" not in ask.calls[1] and audit.records(kind="access_denied") == []
    record()  # what the task step calls when a proposal is actually refused
    assert audit.records(kind="access_denied")[0].actor == "bob"


def test_reading_a_task_needs_a_role_in_its_organisation(tmp_path):
    store, audit = _setup(tmp_path)
    task = store.propose(make_plan("rp-read"), "sensor:drift", PENDING)
    client = client_for(store, tmp_path, grants=False)
    assert client.get(f"/api/v1/tasks/{task.id}", headers=BOB).status_code == 200
    GrantStore(engine=audit.engine, audit=audit).revoke("bob", Grant("viewer", "unassigned"), by=TEST_ADMIN)
    reply = client.get(f"/api/v1/tasks/{task.id}", headers=BOB)
    assert reply.status_code == 403 and reply.json()["error"] == "forbidden"
    assert "bob may not read in unassigned" in reply.json()["detail"]


def test_the_task_list_holds_only_the_callers_organisations(tmp_path):
    """GET /api/v1/tasks pages in the database over the caller's organisations only: the total and the
    page never count another organisation's task."""
    from qlrf.remediation.plans import PatchPlan

    store, audit = _setup(tmp_path)
    store.propose(make_plan("rp-unassigned"), "sensor:drift", PENDING)
    plan = make_plan("rp-acme")
    acme = store.propose(PatchPlan.model_validate({**plan.model_dump(mode="json"),
                                                   "metadata": {**plan.metadata.model_dump(mode="json"), "org": "acme"},
                                                   "content_hash": None}), "sensor:drift", PENDING)
    assert acme.org == "acme"
    client = client_for(store, tmp_path, grants=False)
    page = client.get("/api/v1/tasks", headers=BOB).json()  # bob: viewer@unassigned only
    assert page["total"] == 1 and [t["id"] for t in page["tasks"]] != [acme.id]
    GrantStore(engine=audit.engine, audit=audit).revoke("bob", Grant("viewer", "unassigned"), by=TEST_ADMIN)
    assert client.get("/api/v1/tasks", headers=BOB).json()["total"] == 0
