"""Readers follow the caller: the CLI's report and sbom query and the dashboard's scope get the
organisations the caller's grants name; the single-user default stays unrestricted."""

from __future__ import annotations

import pytest

from qlrf.remediation.audit import AuditLog
from qlrf.tenancy import Grant, Principal
from qlrf.tenancy.identity import IdentityRefused
from qlrf.tenancy.readers import cli_reader_orgs, dashboard_reader_orgs, readable_orgs
from qlrf.tenancy.store import GrantStore

KNOWN = ("acme", "initech")


def test_readable_orgs_all_some_none():
    assert readable_orgs(Principal("root", "signed_in", (Grant("viewer", "*"),)), KNOWN) is None
    assert readable_orgs(Principal("a", "signed_in", (Grant("approver", "acme"),)), KNOWN) == ("acme",)
    # a project-narrowed grant still reads (only) its organisation's rows; an org-wide '*' needs no project
    assert readable_orgs(Principal("p", "signed_in", (Grant("viewer", "initech", "labs"),)), KNOWN) == ("initech",)
    assert readable_orgs(Principal("nobody", "signed_in", ()), KNOWN) == ()
    assert readable_orgs(Principal(None), KNOWN) == ()


@pytest.fixture()
def store(tmp_path):
    audit = AuditLog(f"sqlite:///{tmp_path / 'tasks.db'}")
    return GrantStore(engine=audit.engine, audit=audit)


def test_the_cli_default_is_unrestricted_and_a_local_operator_reads_their_grants(store):
    assert cli_reader_orgs({}, store) is None  # the single-user embedded default, as before tenancy
    env = {"QLRF_CLI_TRUSTED_LOCAL_USER": "Alice"}
    assert cli_reader_orgs(env, store) == ()  # identified, no grant yet: nothing
    store.bootstrap_admin("root", operator="root")
    store.grant("alice", Grant("viewer", "initech"), by=store.principal("root", "trusted_local"))
    assert cli_reader_orgs(env, store) == ("initech",)


def test_a_bad_token_is_refused_not_read_unrestricted(store):
    with pytest.raises(IdentityRefused):
        cli_reader_orgs({"QLRF_ID_TOKEN": "not-a-jwt", "QLRF_OIDC_ISSUER": "http://127.0.0.1:9/",
                         "QLRF_OIDC_JWKS_URL": "http://127.0.0.1:9/jwks"}, store)


def test_the_dashboards_anonymous_reader_is_unrestricted_only_without_a_provider():
    nobody = Principal(None)
    assert dashboard_reader_orgs(nobody, False, KNOWN) is None  # embedded default: the machine's own view
    assert dashboard_reader_orgs(nobody, True, KNOWN) == ()  # sign-in configured: nothing before it
    assert dashboard_reader_orgs(Principal("a", "signed_in", (Grant("viewer", "acme"),)), True, KNOWN) == ("acme",)


def test_the_dashboard_opens_the_sessions_tenant_scope_on_postgres_only():
    from types import SimpleNamespace

    from qlrf.tenancy.readers import tenant_scope_of
    from qlrf.tenancy.scope import current_scope

    rita = SimpleNamespace(principal=Principal("rita", "signed_in", (Grant("viewer", "acme"),)))
    with tenant_scope_of(rita, {}):
        assert current_scope() is None  # SQLite: no RLS, nothing to open
    with tenant_scope_of(rita, {"QLRF_POSTGRES_URL": "postgresql://db/qlrf"}):
        assert current_scope().orgs == frozenset({"acme"})
    with tenant_scope_of(SimpleNamespace(principal=Principal(None)), {"QLRF_POSTGRES_URL": "postgresql://db/qlrf"}):
        assert current_scope() is None  # anonymous: no scope, RLS shows nothing
