"""The approvals page: cards bound to the plan hash, identity from sign-in or the trusted local mode (AppTest)."""

from __future__ import annotations

import re

import pytest
import yaml

from qlrf.db import database_url
from tests.dashboard.support import open_page, tables, texts
from tests.sensors.support import PENDING, make_plan, store_at


@pytest.fixture()
def seeded(isolated_env, monkeypatch, tmp_path):
    """A temp task store (QLRF_HOME in tmp) with a dev and a prod plan waiting for approval."""
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "no-warehouse"))
    monkeypatch.delenv("QLRF_DASHBOARD_LOCAL_USER", raising=False)
    store = store_at(database_url())
    dev = store.propose(make_plan("rp-lon1-dev", instances=5, risk_level="high"), "sensor:drift_findings_sensor", PENDING)
    prod = store.propose(make_plan("rp-fra1-prod", instances=2, environment="prod", autonomy_mode="canary_only",
                                   risk_level="high", site="fra1"), "sensor:drift_findings_sensor", PENDING)
    return store, dev, prod


def test_cards_show_the_plan_and_no_identity_hides_the_buttons(seeded):
    store, dev, prod = seeded
    at = open_page("approvals")
    page = texts(at)
    assert "Waiting for approval (2)" in page
    assert "No approver identity" in page and "QLRF_DASHBOARD_LOCAL_USER" in page
    targets = [m.value for m in at.metric if m.label == "Targets"]
    assert sorted(targets) == ["2", "5"]
    assert "ami-old" in page and "ami-new" in page and "2026.11.2" in page
    assert "needs approval: risk level high always needs approval" in page
    assert dev.plan_hash in page and prod.plan_hash in page
    assert "ships STOPPED" in page
    assert len(re.findall(r"\d+ h \d\d min left", page)) == 2
    waves = tables(at, "canary")[0]
    assert list(waves["name"]) == ["canary", "batch-1"] and list(waves["targets"]) == [1, 4]
    assert at.code[0].value.strip() == dev.plan_yaml.strip()  # the expandable plan YAML, verbatim
    keys = {b.key for b in at.button}
    for action in ("approve", "reject", "modify"):  # anonymous: no approver role, so no decision controls at all
        assert f"{action}-{dev.id}" not in keys and f"{action}-{prod.id}" not in keys
    assert not [t for t in at.text_input if str(t.key).startswith("reason-")]


def test_local_mode_decides_dev_but_not_production(seeded, monkeypatch):
    store, dev, prod = seeded
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_USER", " Alice@Example.com ")
    at = open_page("approvals")
    assert "Local single-user mode" in texts(at) and "alice@example.com" in texts(at)
    assert at.button(key=f"approve-{prod.id}").disabled
    assert "production plans cannot be decided in local single-user mode" in texts(at)

    at.button(key=f"approve-{dev.id}").click().run()  # no reason: refused, nothing changes
    assert not at.exception
    assert "give a reason" in at.error[0].value
    assert store.get(dev.id).state == "pending_approval"

    at.text_input(key=f"reason-{dev.id}").input("canary list reviewed")
    at.button(key=f"approve-{dev.id}").click().run()
    assert not at.exception
    approved = store.get(dev.id)
    assert (approved.state, approved.approver, approved.reason) == ("approved", "alice@example.com", "canary list reviewed")
    assert "rp-lon1-dev: approved by alice@example.com." in texts(at)
    assert "Waiting for approval (1)" in texts(at)
    assert store.get(prod.id).state == "pending_approval"
    decided = tables(at, "expires_at")[-1]
    assert list(decided["task"]) == [dev.id] and list(decided["state"]) == ["approved"]
    assert store.audit.verify().ok


def test_signed_in_user_can_decide_production(seeded):
    store, _, prod = seeded
    at = open_page("approvals")
    at.user = {"is_logged_in": True, "email": "Bob@Example.com", "name": "Bob", "qlrf_roles": ["approver@*"]}
    at.run()
    assert "Signed in as bob@example.com (approver@*)" in texts(at)
    at.text_input(key=f"reason-{prod.id}").input("prod window agreed with the owners")
    at.button(key=f"reject-{prod.id}").click().run()
    assert not at.exception
    rejected = store.get(prod.id)
    assert (rejected.state, rejected.approver) == ("rejected", "bob@example.com")


@pytest.mark.parametrize("who", ["sensor:drift_findings_sensor", "  Sensor:Drift_Findings_SENSOR "])
def test_the_requester_cannot_approve_its_own_plan(seeded, monkeypatch, who):
    store, dev, _ = seeded
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_USER", who)
    at = open_page("approvals")
    assert at.button(key=f"approve-{dev.id}").disabled
    assert "you requested this plan" in texts(at)
    assert store.get(dev.id).state == "pending_approval"


def test_modify_supersedes_the_task_and_needs_another_approver(seeded, monkeypatch):
    store, dev, _ = seeded
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_USER", "carol")
    at = open_page("approvals")
    doc = yaml.safe_load(dev.plan_yaml)
    doc["spec"]["health_gate"]["timeout_seconds"] = 120  # the old content_hash stays in: the page drops it
    edited = yaml.safe_dump(doc, sort_keys=False)
    at.text_area(key=f"edit-{dev.id}").input(edited)
    at.text_input(key=f"reason-{dev.id}").input("longer health gate")
    at.button(key=f"modify-{dev.id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    old = store.get(dev.id)
    assert (old.state, old.approver) == ("rejected", "carol")
    new = next(t for t in store.list("pending_approval") if t.supersedes == dev.id)
    assert new.plan().spec.health_gate.timeout_seconds == 120 and new.requested_by == "carol"
    assert at.button(key=f"approve-{new.id}").disabled  # the editor cannot approve their own edit


def test_a_broken_edit_is_refused_with_one_line(seeded, monkeypatch):
    store, dev, _ = seeded
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_USER", "carol")
    at = open_page("approvals")
    at.text_area(key=f"edit-{dev.id}").input("spec: [unclosed")
    at.text_input(key=f"reason-{dev.id}").input("typo")
    at.button(key=f"modify-{dev.id}").click().run()
    assert not at.exception
    assert "edited plan of" in at.error[0].value and "\n" not in at.error[0].value
    assert store.get(dev.id).state == "pending_approval"


def test_no_pending_plan(isolated_env, monkeypatch, tmp_path):
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "no-warehouse"))
    at = open_page("approvals")
    assert "No patch plan is waiting" in texts(at)


def test_the_card_says_what_the_canary_did():
    from dashboards.components.cards import canary_note

    assert canary_note({}) == "runs after the approval, as the first wave"
    assert canary_note({"canary_allowed": True}).startswith("allowed to run before the approval; no verdict yet")
    passed = canary_note({"canary_allowed": True, "canary": {"passed": True, "at": "2026-11-20T10:00:00+00:00",
                                                             "reason": "3/3 healthy through the soak"}})
    assert passed == "passed at 2026-11-20T10:00:00+00:00: 3/3 healthy through the soak"
    assert canary_note({"canary": {"passed": False, "state": "rolled_back"}}).startswith("FAILED (rolled back")
