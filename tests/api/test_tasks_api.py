"""GET/POST /api/v1/tasks...: every answer and every refusal, against a real task store and audit log."""

from __future__ import annotations

import threading
from datetime import timedelta

from tests.api.support import ALICE, BOB, CAROL, T0, bearer
from tests.remediation.support import ALLOW, PENDING, make_plan


def _pending(store, plan_id="plan-1", environment="prod", requested_by="bob"):
    return store.propose(make_plan(plan_id, environment=environment), requested_by, PENDING)


def test_list_filters_pages_and_never_carries_the_plan(client, store, clock):
    made = []
    for n in range(5):
        clock.set(T0 + timedelta(minutes=n))
        made.append(_pending(store, f"plan-{n}", "prod" if n % 2 else "dev").id)
    clock.set(T0 + timedelta(minutes=9))
    approved = store.propose(make_plan("plan-auto", environment="dev"), "sensor", ALLOW)

    page = client.get("/api/v1/tasks", params={"limit": 2}, headers=ALICE)
    assert page.status_code == 200
    body = page.json()
    assert [t["id"] for t in body["tasks"]] == made[:2]
    assert (body["total"], body["limit"], body["offset"], body["next_offset"]) == (6, 2, 0, 2)
    assert not {"plan_yaml", "plan", "decision"} & set(body["tasks"][0])
    assert body["tasks"][0]["state"] == "pending_approval" and body["tasks"][0]["requested_by"] == "bob"

    last = client.get("/api/v1/tasks", params={"limit": 2, "offset": 4}, headers=ALICE).json()
    assert [t["id"] for t in last["tasks"]] == [made[4], approved.id] and last["next_offset"] is None

    prod = client.get("/api/v1/tasks", params={"environment": "prod"}, headers=ALICE).json()
    assert [t["id"] for t in prod["tasks"]] == [made[1], made[3]] and prod["total"] == 2

    states = client.get("/api/v1/tasks", params=[("state", "approved"), ("state", "rejected")], headers=ALICE).json()
    assert [t["id"] for t in states["tasks"]] == [approved.id] and states["tasks"][0]["approver"] == "policy:auto"


def test_list_refuses_bad_filters_and_oversized_pages(client):
    for params, field in (({"limit": 201}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset"),
                          ({"state": "pending"}, "state")):
        response = client.get("/api/v1/tasks", params=params, headers=ALICE)
        assert response.status_code == 422, params
        assert response.json()["detail"][0]["loc"][:2] == ["query", field]


def test_show_has_the_plan_and_its_hash(client, store):
    task = _pending(store)
    response = client.get(f"/api/v1/tasks/{task.id}", headers=CAROL)
    assert response.status_code == 200
    body = response.json()
    assert body["plan_hash"] == task.plan_hash == body["plan"]["content_hash"]
    assert body["plan"]["metadata"]["id"] == "plan-1" and body["plan"]["spec"]["to_image"]["version"] == "3.0.0"
    assert body["plan_yaml"] == task.plan_yaml
    assert body["decision"]["approval_reasons"] == ["risk level high always needs approval"]


def test_unknown_and_malformed_task_ids(client, store):
    missing = client.get("/api/v1/tasks/task-0123456789abcdef", headers=ALICE)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no task 'task-0123456789abcdef'", "error": "task_not_found"}
    review = {"plan_hash": "sha256:" + "0" * 64, "reason": "ok"}
    assert client.post("/api/v1/tasks/task-0123456789abcdef/approve", json=review, headers=ALICE).status_code == 404
    malformed = client.get("/api/v1/tasks/../../etc", headers=ALICE)
    assert malformed.status_code == 404  # not a route at all
    bad = client.get("/api/v1/tasks/TASK-1", headers=ALICE)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["path", "task_id"]


def test_approve_binds_the_caller_and_the_hash(client, store):
    task = _pending(store)
    response = client.post(f"/api/v1/tasks/{task.id}/approve",
                           json={"plan_hash": task.plan_hash, "reason": "  CAB-42 reviewed  "}, headers=ALICE)
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["approver"], body["reason"]) == ("approved", "alice@example.com", "CAB-42 reviewed")
    stored = store.get(task.id)
    assert (stored.state, stored.approver) == ("approved", "alice@example.com")
    record = store.approval_record(stored)
    assert record is not None and record.actor == "alice@example.com" and store.audit.verify().ok
    again = client.post(f"/api/v1/tasks/{task.id}/approve", json={"plan_hash": task.plan_hash, "reason": "again"},
                        headers=CAROL)
    assert again.status_code == 409 and again.json()["error"] == "task_state"
    assert "is approved, not pending_approval" in again.json()["detail"]


def test_reject(client, store):
    task = _pending(store)
    response = client.post(f"/api/v1/tasks/{task.id}/reject", json={"plan_hash": task.plan_hash, "reason": "wrong window"},
                           headers=CAROL)
    assert response.status_code == 200 and response.json()["state"] == "rejected"
    assert (store.get(task.id).state, store.get(task.id).approver) == ("rejected", "carol")
    assert [r.kind for r in store.audit.records(subject=task.id)][-1] == "rejection"


def test_wrong_hash_is_409_and_changes_nothing(client, store):
    task = _pending(store)
    other = make_plan(to_ref="ami-00000000000evil01").compute_hash()
    for action in ("approve", "reject"):
        response = client.post(f"/api/v1/tasks/{task.id}/{action}", json={"plan_hash": other, "reason": "ok"}, headers=ALICE)
        assert response.status_code == 409
        assert response.json()["error"] == "plan_hash_mismatch" and f"got {other}" in response.json()["detail"]
    assert store.get(task.id).state == "pending_approval"


def test_self_approval_is_403_whatever_the_spelling(client, store):
    task = _pending(store, requested_by="ALICE@example.com ")
    for action in ("approve", "reject"):
        response = client.post(f"/api/v1/tasks/{task.id}/{action}", json={"plan_hash": task.plan_hash, "reason": "mine"},
                               headers=ALICE)
        assert response.status_code == 403
        assert response.json() == {
            "detail": f"task {task.id}: self-approval refused: alice@example.com requested this plan",
            "error": "self_approval",
        }
    assert store.get(task.id).state == "pending_approval"


def test_expired_is_409_and_the_task_expires(client, store, clock):
    task = _pending(store)
    clock.set(T0 + timedelta(hours=24, seconds=1))
    response = client.post(f"/api/v1/tasks/{task.id}/approve", json={"plan_hash": task.plan_hash, "reason": "late"},
                           headers=ALICE)
    assert response.status_code == 409 and response.json()["error"] == "approval_expired"
    assert "approval expired at 2026-11-28T10:00:00" in response.json()["detail"]
    assert store.get(task.id).state == "expired"


def test_review_bodies_are_validated_and_identity_cannot_be_typed(client, store):
    task = _pending(store)
    url = f"/api/v1/tasks/{task.id}/approve"
    cases = [
        ({"reason": "ok"}, ["body", "plan_hash"], "missing"),
        ({"plan_hash": "abc", "reason": "ok"}, ["body", "plan_hash"], "string_pattern_mismatch"),
        ({"plan_hash": task.plan_hash, "reason": "   "}, ["body", "reason"], "string_too_short"),
        ({"plan_hash": task.plan_hash, "reason": "ok", "approver": "mallory"}, ["body", "approver"], "extra_forbidden"),
    ]
    for body, loc, kind in cases:
        response = client.post(url, json=body, headers=CAROL)
        assert response.status_code == 422, body
        errors = response.json()["detail"]
        assert [(e["loc"], e["type"]) for e in errors] == [(loc, kind)]
    assert store.get(task.id).state == "pending_approval" and store.get(task.id).approver is None


def test_no_identity_bad_token_and_malformed_header_are_401(client, store):
    task = _pending(store)
    review = {"plan_hash": task.plan_hash, "reason": "ok"}
    for headers, says in (
        ({}, "no identity: send 'Authorization: Bearer <token>'"),
        (bearer("tok-mallory"), "bearer token refused: unknown or revoked"),
        ({"Authorization": "Basic YWxpY2U6eA=="}, "Authorization header: expected 'Bearer <token>'"),
        ({"Authorization": "Bearer"}, "Authorization header: expected 'Bearer <token>'"),
    ):
        for method, url, kwargs in (("GET", "/api/v1/tasks", {}), ("GET", f"/api/v1/tasks/{task.id}", {}),
                                    ("POST", f"/api/v1/tasks/{task.id}/approve", {"json": review}),
                                    ("POST", f"/api/v1/tasks/{task.id}/reject", {"json": review})):
            response = client.request(method, url, headers=headers, **kwargs)
            assert response.status_code == 401, (method, url, headers)
            assert response.json() == {"detail": says, "error": "unauthenticated"}
            assert response.headers["www-authenticate"] == "Bearer"
    assert store.get(task.id).state == "pending_approval"


def test_unauthenticated_beats_a_bad_body(client):
    response = client.post("/api/v1/tasks/task-0123456789abcdef/approve", json={"approver": "mallory"})
    assert response.status_code == 401


def test_bob_cannot_approve_his_own_task_but_carol_can(client, store):
    task = _pending(store, requested_by="bob")
    review = {"plan_hash": task.plan_hash, "reason": "ok"}
    assert client.post(f"/api/v1/tasks/{task.id}/approve", json=review, headers=BOB).status_code == 403
    assert client.post(f"/api/v1/tasks/{task.id}/approve", json=review, headers=CAROL).json()["approver"] == "carol"


def test_two_approvers_racing_get_one_approval(client, store):
    task = _pending(store)
    statuses: list[int] = []

    def approve(headers):
        response = client.post(f"/api/v1/tasks/{task.id}/approve", json={"plan_hash": task.plan_hash, "reason": "race"},
                               headers=headers)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=approve, args=(h,)) for h in (ALICE, CAROL, ALICE, CAROL)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409, 409, 409]
    assert len(store.audit.records(subject=task.id, kind="approval")) == 1 and store.audit.verify().ok
