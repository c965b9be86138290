"""The approvals page: review pending plans, approve / reject through the task store (AppTest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from qlrf.db import database_url
from tests.sensors.support import PENDING, make_plan, store_at

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


@pytest.fixture()
def seeded(isolated_env, monkeypatch, tmp_path):
    """A temp task store (QLRF_HOME in tmp) with two plans waiting for approval."""
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "no-warehouse"))
    store = store_at(database_url())
    first = store.propose(make_plan("rp-lon1-dev", instances=5, risk_level="high"), "sensor:drift_findings_sensor", PENDING)
    second = store.propose(make_plan("rp-fra1-staging", instances=2, environment="staging", autonomy_mode="canary_only",
                                     risk_level="high", site="fra1"), "sensor:drift_findings_sensor", PENDING)
    return store, first, second


def _tables(at: AppTest, column: str) -> list:
    """The page's dataframes that have `column`, in page order (AppTest does not expose dataframe keys)."""
    return [d.value for d in at.dataframe if column in d.value.columns]


def _pending(at: AppTest):
    tables = _tables(at, "expires_at")
    return tables[0] if tables and set(tables[0]["state"]) == {"pending_approval"} else None


def _decided(at: AppTest):
    tables = [t for t in _tables(at, "expires_at") if "pending_approval" not in set(t["state"])]
    return tables[-1]


def _approvals_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30).run()
    at.switch_page("app_pages/approvals.py").run()
    assert not at.exception
    return at


def test_pending_plans_are_shown_with_their_plan(seeded):
    store, first, second = seeded
    at = _approvals_page()
    assert at.title[0].value == "Approvals"
    pending = _pending(at)
    assert list(pending["task"]) == [first.id, second.id]
    assert list(pending["risk"]) == ["high", "high"]
    assert at.selectbox(key="task").value == first.id
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Risk": "high", "Autonomy mode": "full_auto", "Targets": "5", "Waves": "2"}
    waves = _tables(at, "canary")[0]
    assert list(waves["name"]) == ["canary", "batch-1"] and list(waves["targets"]) == [1, 4]
    assert len(_tables(at, "from_image")[0]) == 5
    page = " ".join(m.value for m in at.markdown)
    assert "ami-old" in page and "ami-new" in page and "2026.11.2" in page
    assert "needs approval: risk level high always needs approval" in page
    assert first.plan_hash in " ".join(c.value for c in at.caption)


def test_approve_one_reject_the_other(seeded):
    store, first, second = seeded
    at = _approvals_page()

    # No approver: an error, nothing changes.
    at.text_input(key="reason").input("checked the canary")
    at.button(key="approve").click().run()
    assert not at.exception
    assert "approver" in at.error[0].value
    assert {store.get(first.id).state, store.get(second.id).state} == {"pending_approval"}

    at.selectbox(key="task").select(first.id)
    at.text_input(key="approver").input("alice")
    at.text_input(key="reason").input("canary list reviewed")
    at.button(key="approve").click().run()
    assert not at.exception
    approved = store.get(first.id)
    assert (approved.state, approved.approver, approved.reason) == ("approved", "alice", "canary list reviewed")
    assert at.success[0].value == "rp-lon1-dev: approved by alice."
    assert list(_pending(at)["task"]) == [second.id]

    assert at.selectbox(key="task").value == second.id
    at.text_input(key="approver").input("bob")
    at.text_input(key="reason").input("staging is frozen this week")
    at.button(key="reject").click().run()
    assert not at.exception
    rejected = store.get(second.id)
    assert (rejected.state, rejected.approver) == ("rejected", "bob")

    assert "No patch plan is waiting" in at.info[0].value
    decided = _decided(at)
    assert dict(zip(decided["task"], decided["state"], strict=True)) == {first.id: "approved", second.id: "rejected"}
    audit = _tables(at, "seq")[0]
    assert {"approval", "rejection"} <= set(audit["kind"])
    assert store.audit.verify().ok


@pytest.mark.parametrize("who", ["sensor:drift_findings_sensor", "  Sensor:Drift_Findings_SENSOR "])
def test_the_requester_cannot_approve_its_own_plan(seeded, who):
    store, first, _ = seeded
    at = _approvals_page()
    at.text_input(key="approver").input(who)
    at.text_input(key="reason").input("looks fine to me")
    at.button(key="approve").click().run()
    assert "self-approval refused" in at.error[0].value
    assert store.get(first.id).state == "pending_approval"


def test_no_pending_plan(isolated_env, monkeypatch, tmp_path):
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "no-warehouse"))
    at = _approvals_page()
    assert "No patch plan is waiting" in at.info[0].value
    assert _tables(at, "seq")[0].empty

