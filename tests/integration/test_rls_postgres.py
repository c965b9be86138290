"""Row-level security on the machine's PostgreSQL (issue 14 item 4): two organisations' rows in every
per-tenant table, read and written through the application role that ``qlrf db setup-rls`` makes.

Each test database gets its own owner and application roles (roles are cluster-wide: unique names,
dropped afterwards)."""

from __future__ import annotations

import uuid
from contextlib import closing
from datetime import UTC, datetime

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from qlrf.alerts.ledger import AlertLedger
from qlrf.db import dispose_engines, engine_for, read_tx, write_tx
from qlrf.events.wiring import evented_store
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.journal import ExecutionJournal
from qlrf.tenancy.rls import TENANT_TABLES, app_url, rls_status, setup_rls
from qlrf.tenancy.roles import Grant
from qlrf.tenancy.scope import system_scope, tenant_scope
from tests.remediation.support import PENDING, make_plan

pytestmark = pytest.mark.postgres
ORGS = ("acme", "initech")


def plan_of(org: str, plan_id: str | None = None):
    """A plan of `org`: metadata.org when the plan contract has it (tenancy), else set on the model."""
    plan = make_plan(plan_id or f"plan-{org}")
    if "org" in type(plan.metadata).model_fields:
        doc = plan.model_dump(mode="json")
        doc["metadata"]["org"] = org
        return type(plan).model_validate(doc)
    object.__setattr__(plan.metadata, "org", org)  # before metadata.org lands: what the store reads
    return plan


@pytest.fixture
def tenants(pg_url, tmp_path, monkeypatch):
    """RLS set up on a fresh database, two orgs' rows in every tenant table; yields the app role's URL."""
    monkeypatch.setenv("QLRF_HOME", str(tmp_path))  # the audit anchor's head file and key live here
    suffix = uuid.uuid4().hex[:8]
    owner, app = f"qlrf_owner_{suffix}", f"qlrf_app_{suffix}"
    setup_rls(pg_url, owner_role=owner, app_role=app)
    url = app_url(pg_url, app)
    try:
        audit = AuditLog(url)
        for org in ORGS:
            with tenant_scope(org):
                store = evented_store(url, audit=audit)
                task = store.propose(plan_of(org), f"sensor:{org}", PENDING)
                ExecutionJournal(url).begin(task.id, task.plan_id, task.plan_hash, mode="run", actor="executor")
                AlertLedger(url).mark(f"drift:{org}", "slack", "drift", datetime(2026, 11, 27, tzinfo=UTC))
                audit.append("alert", "sensor", f"alert-{org}", {"org": org})
        yield url, audit, owner, app
    finally:
        dispose_engines()
        drop_roles(pg_url, owner, app)


def drop_roles(pg_url: str, *roles: str) -> None:
    """Roles are cluster-wide: hand their objects back, revoke their grants and drop them, each step
    tried even when one before failed (a role left behind would outlive the test database)."""
    admin = psycopg2.connect(pg_url)
    admin.autocommit = True
    names = ", ".join(roles)
    try:
        for statement in (f"REASSIGN OWNED BY {names} TO postgres", f"DROP OWNED BY {names}",
                          *(f"DROP ROLE IF EXISTS {r}" for r in roles)):
            try:
                with admin.cursor() as cur:
                    cur.execute(statement)
            except psycopg2.Error as exc:  # pragma: no cover - reported, the next step still runs
                print(f"cleanup: {statement}: {exc}")
    finally:
        admin.close()


def counts(url: str, where: str = "TRUE") -> dict[str, int]:
    with read_tx(engine_for(url)) as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t} WHERE {where}")).scalar() for t in TENANT_TABLES}


def test_a_tenant_sees_only_its_own_rows_in_every_table(tenants):
    url = tenants[0]
    with system_scope("test"):
        everything = counts(url, "org <> 'unassigned'")  # (the unassigned chain's empty head row)
    assert all(everything[t] >= 2 for t in TENANT_TABLES), everything  # both orgs wrote to every table
    with tenant_scope("acme"):
        assert counts(url, "org = 'initech'") == dict.fromkeys(TENANT_TABLES, 0)
        mine = counts(url)
        assert mine == counts(url, "org = 'acme'") and all(mine[t] >= 1 for t in TENANT_TABLES), mine
        with read_tx(engine_for(url)) as conn:
            assert conn.execute(text("SELECT DISTINCT org FROM rf_open_tasks")).scalars().all() == ["acme"]
    with tenant_scope(["acme", "initech"]):
        assert counts(url) == everything


def test_unset_tenant_sees_nothing_and_writes_nothing(tenants):
    url = tenants[0]
    assert counts(url) == dict.fromkeys(TENANT_TABLES, 0)
    with pytest.raises(DBAPIError, match="row-level security"):
        AlertLedger(url).mark("drift:x", "slack", "drift", datetime(2026, 11, 27, tzinfo=UTC))
    with pytest.raises(DBAPIError, match="row-level security"):
        _insert_outbox(url, "unassigned")


def _insert_outbox(url: str, org: str) -> None:
    with write_tx(engine_for(url)) as conn:
        conn.execute(text(
            "INSERT INTO rf_event_outbox (id, type, source, subject, time, data, body, created_at, attempts, org) "
            "VALUES (:i, 't', 's', 'x', now(), '{}', '{}', now(), 0, :o)"), {"i": uuid.uuid4().hex, "o": org})


def test_writes_into_another_tenants_rows_fail(tenants):
    url = tenants[0]
    with tenant_scope("acme"):
        with pytest.raises(DBAPIError, match="row-level security"):
            _insert_outbox(url, "initech")
        with write_tx(engine_for(url)) as conn:  # initech's rows are invisible: nothing to update
            assert conn.execute(text("UPDATE rf_tasks SET reason = 'hijacked' WHERE org = 'initech'")).rowcount == 0
            assert conn.execute(text("DELETE FROM rf_audit_log WHERE org = 'initech'")).rowcount == 0
        # moving an own row to initech
        with pytest.raises(DBAPIError, match="row-level security"), write_tx(engine_for(url)) as conn:
            conn.execute(text("UPDATE rf_tasks SET org = 'initech'"))
    with system_scope("test"), read_tx(engine_for(url)) as conn:
        assert conn.execute(text("SELECT count(*) FROM rf_tasks WHERE reason = 'hijacked'")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM rf_tasks WHERE org = 'initech'")).scalar() == 1


def test_the_application_role_neither_owns_nor_bypasses(tenants, pg_url):
    url, _, owner, app = tenants
    status = rls_status(url)
    assert status.role == app and not status.superuser and not status.bypassrls
    assert status.problems == [], status.problems
    assert all(t.rls and t.forced and t.owner == owner for t in status.tables)
    assert status.views == {"rf_open_tasks": True}
    from qlrf.tenancy.store import GrantStore

    assert GrantStore(url, audit=AuditLog(url)).grants_for("nobody") == ()  # the role table: readable, no RLS
    with closing(psycopg2.connect(pg_url)) as admin, admin, admin.cursor() as cur:
        cur.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (owner,))
        assert cur.fetchone() == (False,)
        cur.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (app, owner))
        assert cur.fetchone() == (False,)
    # As the superuser (the admin URL) the status says RLS would be bypassed.
    assert any("bypasses row-level security" in p for p in rls_status(pg_url).problems)


def test_each_org_chain_verifies_and_tampering_is_found(tenants, pg_url):
    url, audit, _, _ = tenants
    for org in ORGS:
        with tenant_scope(org):
            result = audit.verify(org=org)
            assert result.ok and result.checked >= 4, result.problems
            assert {r.org for r in audit.records()} == {org}
            assert audit.verify().ok  # the whole visible log: this org's chain, no false "missing" records
    with system_scope("test"):
        assert audit.verify().ok
    # the database owner edits one acme record
    with closing(psycopg2.connect(pg_url)) as admin, admin, admin.cursor() as cur:
        cur.execute("UPDATE rf_audit_log SET actor = 'mallory' WHERE org = 'acme' AND org_seq = 1")
    with tenant_scope("acme"):
        problems = audit.verify(org="acme").problems
        assert any("content does not match its hash" in p for p in problems), problems
    with tenant_scope("initech"):
        assert audit.verify(org="initech").ok
    with system_scope("test"):
        assert not audit.verify().ok


def test_the_cli_reports_rls_and_setup_is_idempotent(tenants, pg_url, capsys):
    from qlrf.cli import main

    url, _, owner, app = tenants
    assert setup_rls(pg_url, owner_role=owner, app_role=app) == [  # a second run changes nothing it reports
        f"{t}: RLS enabled and forced, policy rf_tenant" for t in TENANT_TABLES] + ["view rf_open_tasks: security_invoker"]
    assert main(["db", "rls-status", "--url", url]) == 0
    out = capsys.readouterr().out
    assert f"connected as {app}\n" in out and out.count("rls=on forced=yes policies=rf_tenant") == len(TENANT_TABLES)
    assert main(["db", "rls-status", "--url", pg_url]) == 1  # the superuser bypasses: said, exit 1
    assert "problem: role postgres bypasses row-level security" in capsys.readouterr().out


def test_migrate_a_postgres_database_made_before_tenancy(pg_url, tmp_path, monkeypatch):
    monkeypatch.setenv("QLRF_HOME", str(tmp_path))
    from qlrf.db import migrate

    audit = AuditLog(pg_url)
    for i in range(3):
        audit.append("alert", "sensor", f"old-{i}")
    with engine_for(pg_url).begin() as conn:  # back to the pre-tenancy schema: no org, no sequence
        conn.exec_driver_sql("DROP INDEX ux_rf_audit_head_org")
        conn.exec_driver_sql("DROP INDEX ix_rf_audit_org_seq")
        for table in TENANT_TABLES:
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN org")
        conn.exec_driver_sql("ALTER TABLE rf_audit_log DROP COLUMN org_seq")
        conn.exec_driver_sql("DROP SEQUENCE rf_audit_seq")
    dispose_engines()
    assert {f"{t}.org" for t in TENANT_TABLES} | {"rf_audit_log.org_seq"} <= set(migrate(pg_url))
    assert migrate(pg_url) == []
    audit = AuditLog(pg_url)
    assert audit.append("alert", "sensor", "new").seq == 4  # the new sequence starts after the old records
    assert audit.verify().ok, audit.verify().problems


def test_a_caller_of_two_orgs_decides_tasks_of_both(tenants):
    url, audit, _, _ = tenants
    with tenant_scope(ORGS):
        store = evented_store(url, audit=audit)
        for task in store.list():
            assert store.reject(task.id, task.plan_hash, "carol", "not now").state == "rejected"
        assert {(r.org, r.kind) for r in audit.records(kind="rejection")} == {(org, "rejection") for org in ORGS}
        assert audit.verify().ok


def test_the_relay_acts_for_every_org(tenants):
    from qlrf.events.outbox import Outbox
    from qlrf.events.relay import Relay

    url = tenants[0]
    sent: list[str] = []

    class Recorder:  # the broker is not what this test is about: the relay's view of the outbox is
        def publish(self, rows):
            sent.extend(event.subject for _, event in rows)
            return [(seq, n) for n, (seq, _) in enumerate(rows, 1)]

    with system_scope("test"):
        waiting = counts(url)["rf_event_outbox"]
    assert Relay(Outbox(url), Recorder()).drain_once().delivered == waiting == len(sent) >= 2
    with tenant_scope(ORGS), read_tx(engine_for(url)) as conn:
        assert conn.execute(text("SELECT count(*) FROM rf_event_outbox WHERE delivered_at IS NULL")).scalar() == 0


def test_two_orgs_append_at_once_and_both_chains_hold(tenants):
    import threading

    url, audit, _, _ = tenants
    errors: list[BaseException] = []

    def append(org: str) -> None:
        try:
            with tenant_scope(org):
                for i in range(15):
                    AuditLog(url).append("wave_end", "executor", f"run-{org}", {"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(org,)) for org in ORGS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for org in ORGS:
        with tenant_scope(org):
            assert [r.org_seq for r in audit.records(org=org)][-15:] == list(range(len(audit.records()) - 14,
                                                                                   len(audit.records()) + 1))
            assert audit.verify(org=org).ok
    with system_scope("test"):
        result = audit.verify()
        assert result.ok, result.problems


def test_the_cli_reads_under_its_callers_tenant_scope(tenants, monkeypatch, capsys):
    """`qlrf approvals list` on the application role: the trusted local operator with viewer@acme
    sees acme's task only; with no identity configured the CLI opens no scope and RLS shows nothing."""
    from qlrf.cli import main
    from qlrf.tenancy.store import GrantStore

    url, audit, _, _ = tenants
    monkeypatch.setenv("QLRF_POSTGRES_URL", url)
    monkeypatch.delenv("QLRF_ID_TOKEN", raising=False)
    store = GrantStore(url)
    with system_scope("test-setup"):  # the grant changes are audited in every org's view
        store.bootstrap_admin("root", operator="root")
        store.grant("rita", Grant("viewer", "acme"), by=store.principal("root", "trusted_local"))
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "rita")
    assert main(["approvals", "list"]) == 0
    mine = capsys.readouterr().out
    assert "sensor:acme" in mine and "sensor:initech" not in mine  # each org's task was requested by its sensor
    monkeypatch.delenv("QLRF_CLI_TRUSTED_LOCAL_USER")
    assert main(["approvals", "list"]) == 0
    assert "sensor:acme" not in capsys.readouterr().out  # unidentified under RLS: no rows, fails closed
