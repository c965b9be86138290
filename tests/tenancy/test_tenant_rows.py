"""Tenancy in the remediation database on SQLite (the embedded default: no RLS, same org columns and
per-org audit chains), the tenant scope itself, and ``qlrf db migrate`` on a database made before
tenancy."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from qlrf.cli import main
from qlrf.db import dispose_engines, engine_for, migrate
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.tenancy.scope import ScopeError, orgs_setting, system_scope, tenant_scope, write_org, writing_org
from tests.integration.test_rls_postgres import plan_of
from tests.remediation.support import PENDING, make_plan


@pytest.fixture()
def url(tmp_path, monkeypatch):
    monkeypatch.setenv("QLRF_HOME", str(tmp_path))
    monkeypatch.delenv("QLRF_POSTGRES_URL", raising=False)
    yield f"sqlite:///{tmp_path / 'qlrf.db'}"
    dispose_engines()


def test_scope_names_the_orgs_and_the_org_of_new_rows():
    assert orgs_setting() == "" and write_org() == "unassigned"  # no scope: sees nothing under RLS
    with tenant_scope(["initech", "acme"]):
        assert orgs_setting() == "acme,initech" and write_org() == "unassigned"  # two orgs: no guess
        with tenant_scope("acme"):
            assert write_org() == "acme"
            with writing_org("initech"):
                assert write_org() == "initech"
    with system_scope("expiry_sensor"):
        assert orgs_setting() == "*"
    for bad in ("", "Acme", "a,b", "a b", "*"):
        with pytest.raises(ScopeError, match="not an organisation id"), tenant_scope(bad):
            pass
    with pytest.raises(ScopeError, match="must name the job"), system_scope(" "):
        pass


def test_tasks_and_their_records_carry_the_plans_org(url):
    audit = AuditLog(url)
    store = TaskStore(url, audit=audit)
    acme = store.propose(plan_of("acme"), "sensor:drift", PENDING)
    legacy = store.propose(make_plan("plan-old"), "sensor:drift", PENDING)
    assert (acme.org, legacy.org) == ("acme", "unassigned")
    store.approve(acme.id, acme.plan_hash, "alice", "CAB-1")
    assert {r.org for r in audit.records(subject=acme.id)} == {"acme"}
    assert [r.org_seq for r in audit.records(org="acme")] == [1, 2, 3, 4]
    assert {r.org for r in audit.records(subject=legacy.id)} == {"unassigned"}
    with system_scope("nightly"):
        record = audit.append("alert", "sensor", "fleet", {"n": 1})
    assert record.data == {"n": 1, "tenant_scope": "system:nightly"}
    with tenant_scope("acme"):  # SQLite has no RLS: a scope picks new rows' org, it hides nothing
        assert audit.append("alert", "sensor", "x").org == "acme"
        assert len(store.list()) == 2


def test_each_org_chain_and_the_whole_log_verify(url, capsys):
    audit = AuditLog(url)
    store = TaskStore(url, audit=audit)
    for n, org in enumerate(("acme", "initech", "acme")):
        task = store.propose(plan_of(org, f"plan-{n}"), "sensor:drift", PENDING)
        store.reject(task.id, task.plan_hash, "bob", "no")
    assert audit.verify().ok, audit.verify().problems
    assert main(["audit", "verify", "--org", "initech"]) == 0
    assert "initech's chain intact" in capsys.readouterr().out
    assert main(["audit", "show", "--org", "initech", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert len(shown) == 4 and {r["org"] for r in shown} == {"initech"}
    with engine_for(url).begin() as conn:
        conn.execute(text("UPDATE rf_audit_log SET actor = 'mallory' WHERE org = 'initech' AND org_seq = 2"))
    assert audit.verify(org="acme").ok
    problems = audit.verify(org="initech").problems
    assert any("content does not match its hash" in p for p in problems), problems
    assert main(["audit", "verify", "--org", "initech"]) == 1
    assert main(["audit", "verify"]) == 1
    with engine_for(url).begin() as conn:  # the tail of one org cut off, its head row left
        conn.execute(text("DELETE FROM rf_audit_log WHERE org = 'acme' AND org_seq = "
                          "(SELECT max(org_seq) FROM rf_audit_log WHERE org = 'acme')"))
    assert any(p.startswith("removed") or "removed from the tail" in p for p in audit.verify(org="acme").problems)


def test_migrate_adds_org_to_a_database_made_before_tenancy(url, capsys):
    audit = AuditLog(url)
    store = TaskStore(url, audit=audit)
    task = store.propose(make_plan(), "sensor:drift", PENDING)
    store.approve(task.id, task.plan_hash, "alice", "CAB-1")
    engine = engine_for(url)
    with engine.begin() as conn:  # back to the pre-tenancy schema (SQLite 3.35+ drops columns)
        conn.exec_driver_sql("DROP INDEX ux_rf_audit_head_org")
        conn.exec_driver_sql("DROP INDEX ix_rf_audit_org_seq")
        for table in ("rf_tasks", "rf_audit_log", "rf_audit_head", "rf_alert_ledger"):
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN org")
        conn.exec_driver_sql("ALTER TABLE rf_audit_log DROP COLUMN org_seq")
    assert "org" not in {c["name"] for c in inspect(engine).get_columns("rf_tasks")}
    dispose_engines()
    added = migrate(url)
    assert {"rf_tasks.org", "rf_audit_log.org", "rf_audit_log.org_seq", "rf_audit_head.org"} <= set(added)
    assert migrate(url) == []  # idempotent
    assert "ix_rf_audit_org_seq" in {i["name"] for i in inspect(engine_for(url)).get_indexes("rf_audit_log")}
    assert main(["db", "migrate", "--url", url]) == 0 and "up to date" in capsys.readouterr().out
    audit = AuditLog(url)
    assert audit.verify().ok, audit.verify().problems  # the old chain is the unassigned chain
    assert TaskStore(url, audit=audit).get(task.id).org == "unassigned"
    assert audit.append("alert", "sensor", "x", {"at": datetime(2026, 11, 27, tzinfo=UTC)}).org_seq == 5
    assert audit.verify().ok


def test_dagster_bodies_act_for_every_org():
    from qlrf.tenancy.scope import acts_for_every_org, current_scope

    @acts_for_every_org("probe_sensor")
    def body(context: object, remediation: object) -> str:
        return orgs_setting() + "|" + current_scope().system

    @acts_for_every_org("probe_op")
    def steps():
        yield orgs_setting()
        yield orgs_setting()

    assert body(None, None) == "*|probe_sensor" and list(steps()) == ["*", "*"]
    assert orgs_setting() == ""  # nothing leaks out of the body
    import inspect as pyinspect

    assert list(pyinspect.signature(body).parameters) == ["context", "remediation"]  # Dagster injects by name


def test_a_principal_scope_is_the_orgs_its_grants_allow():
    from qlrf.tenancy.roles import Grant, Principal
    from qlrf.tenancy.scope import principal_scope

    carol = Principal("carol", "oidc", (Grant("viewer", "acme"), Grant("approver", "initech")))
    with principal_scope(carol):
        assert orgs_setting() == "acme,initech"
    with principal_scope(carol, "approve"):
        assert orgs_setting() == "initech" and write_org() == "initech"
    with principal_scope(Principal("root", "oidc", (Grant("admin", "*"),))) as scope:
        assert orgs_setting() == "*" and scope.system == "user:root"
    with principal_scope(Principal(None)):
        assert orgs_setting() == ""  # nobody: no organisation, sees nothing under RLS
