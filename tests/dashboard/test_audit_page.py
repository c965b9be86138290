"""The audit page: searchable records and the chain's verification status, tampering included."""

from __future__ import annotations

from sqlalchemy import update

from qlrf.db import audit_log, database_url, engine_for
from tests.dashboard.support import open_page, tables, texts
from tests.sensors.support import PENDING, make_plan, store_at


def _seed(monkeypatch, tmp_path):
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "no-warehouse"))
    store = store_at(database_url())
    first = store.propose(make_plan("rp-lon1-dev", instances=2), "sensor:drift_findings_sensor", PENDING)
    second = store.propose(make_plan("rp-fra1-dev", instances=2, site="fra1"), "sensor:drift_findings_sensor", PENDING)
    store.approve(first.id, first.plan_hash, "alice", "canary reviewed")
    return store, first, second


def test_records_are_searchable_and_the_chain_verified(isolated_env, monkeypatch, tmp_path):
    store, first, second = _seed(monkeypatch, tmp_path)
    at = open_page("audit")
    records = tables(at, "seq")[0]
    assert len(records) == len(store.audit.records())
    assert f"Chain verified: {store.audit.verify().checked:,} records" in texts(at)
    at.text_input(key="audit-search").input("alice").run()
    found = tables(at, "seq")[0]
    assert list(found["kind"]) == ["approval"] and list(found["subject"]) == [first.id]
    at.text_input(key="audit-search").input("").run()
    at.selectbox(key="audit-kind").select("approval").run()
    assert set(tables(at, "seq")[0]["kind"]) == {"approval"}


def test_a_tampered_record_fails_verification_on_the_page(isolated_env, monkeypatch, tmp_path):
    store, first, _ = _seed(monkeypatch, tmp_path)
    with engine_for(database_url()).begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.kind == "approval").values(actor="mallory"))
    at = open_page("audit")
    assert "Chain verification FAILED" in texts(at)
    assert "mallory" in set(tables(at, "seq")[0]["actor"])  # shown as stored, flagged by the status above
