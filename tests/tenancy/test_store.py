"""The local role table: names compared case-insensitively, changes by admins only and audited, the
first admin bootstrapped once; and `qlrf users` over it."""

from __future__ import annotations

import json

import pytest

from qlrf.cli import main
from qlrf.remediation.audit import AuditLog
from qlrf.tenancy.roles import AccessDenied, Grant, Principal
from qlrf.tenancy.store import GrantError, GrantStore, make_grant
from tests.tenancy.support import TEST_ADMIN


@pytest.fixture()
def grants(tmp_path) -> GrantStore:
    url = f"sqlite:///{tmp_path / 'roles.db'}"
    return GrantStore(url, audit=AuditLog(url))


def test_names_are_case_insensitive_and_grants_read_back(grants):
    grants.grant(" Alice@Example.COM ", Grant("approver", "acme"), by=TEST_ADMIN)
    grants.grant("alice@example.com", Grant("viewer", "initech", "payments"), by=TEST_ADMIN)
    assert grants.grants_for("ALICE@example.com") == (Grant("approver", "acme"), Grant("viewer", "initech", "payments"))
    assert grants.grants_for("nobody") == () and grants.grants_for(None) == ()
    [user] = grants.list()
    assert (user.name, user.created_by, len(user.grants)) == ("alice@example.com", "test:admin", 2)
    principal = grants.principal("Alice@Example.com", "token", extra=(Grant("operator", "globex"),))
    assert principal.may("approve", "acme") and principal.may("propose", "globex") and not principal.may("read", "other")


def test_every_change_is_audited_and_a_wrong_change_writes_nothing(grants):
    grants.grant("bob", Grant("operator", "acme"), by=TEST_ADMIN)
    with pytest.raises(GrantError, match="bob already holds operator@acme"):
        grants.grant("BOB", Grant("operator", "acme"), by=TEST_ADMIN)
    with pytest.raises(GrantError, match=r"bob does not hold approver@acme: nothing revoked \(holds: operator@acme\)"):
        grants.revoke("bob", Grant("approver", "acme"), by=TEST_ADMIN)
    grants.revoke("bob", Grant("operator", "acme"), by=TEST_ADMIN)
    assert grants.grants_for("bob") == ()
    kinds = [(r.kind, r.actor, r.subject, r.data.get("grant")) for r in grants.audit.records()]
    assert kinds == [("user_added", "test:admin", "user:bob", None), ("grant_added", "test:admin", "user:bob", "operator@acme"),
                     ("grant_revoked", "test:admin", "user:bob", "operator@acme")]
    assert grants.audit.verify().problems == []


def test_only_admins_change_grants_in_their_own_organisation(grants):
    acme_admin = Principal("erin", "token", (Grant("admin", "acme"),))
    grants.grant("bob", Grant("approver", "acme"), by=acme_admin)
    with pytest.raises(AccessDenied, match="erin may not admin in initech"):
        grants.grant("bob", Grant("approver", "initech"), by=acme_admin)
    with pytest.raises(AccessDenied, match=r"bob may not admin in \*: that needs the admin role"):
        grants.add_user("carol", by=Principal("bob", "token", (Grant("approver", "acme"),)))
    assert grants.grants_for("bob") == (Grant("approver", "acme"),)
    denied = [r for r in grants.audit.records() if r.kind == "access_denied"]
    assert [(r.actor, r.subject, r.data["action"], r.data["org"]) for r in denied] == [
        ("erin", "user:bob", "admin", "initech"), ("bob", "user:carol", "admin", "*")]


@pytest.mark.parametrize("name", ["", "   ", "policy:auto", "System:expiry", "ai:bot", "*"])
def test_reserved_or_empty_names_are_refused(grants, name):
    with pytest.raises(GrantError):
        grants.grant(name, Grant("viewer", "acme"), by=TEST_ADMIN)
    assert grants.list() == []


def test_make_grant_normalises_and_refuses_by_name():
    assert make_grant("Approver", " ACME ", "Payments") == Grant("approver", "acme", "payments")
    with pytest.raises(GrantError, match="unknown role 'root'"):
        make_grant("root", "acme")
    with pytest.raises(GrantError, match="a project cannot be narrowed"):
        make_grant("viewer", "*", "payments")


def test_the_first_admin_is_bootstrapped_once(grants):
    assert not grants.has_admin()
    assert grants.bootstrap_admin("Root@Example.com", operator="ops") == Grant("admin", "*")
    assert grants.has_admin() and grants.grants_for("root@example.com") == (Grant("admin", "*"),)
    with pytest.raises(AccessDenied, match="already has one"):
        grants.bootstrap_admin("mallory", operator="mallory")
    assert grants.grants_for("mallory") == ()
    assert [r.kind for r in grants.audit.records()] == ["user_added", "admin_bootstrapped", "access_denied"]


def test_users_cli_bootstrap_grant_list_revoke(isolated_env, monkeypatch, capsys):
    monkeypatch.delenv("QLRF_ID_TOKEN", raising=False)
    monkeypatch.delenv("QLRF_CLI_TRUSTED_LOCAL_USER", raising=False)
    assert main(["users", "add", "root", "--admin"]) == 4  # no sign-in, no trusted local mode: nobody to vouch
    assert "nobody is signed in" in capsys.readouterr().err
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "Root")
    assert main(["users", "add", "root", "--admin"]) == 0
    assert main(["users", "grant", "Bob", "Approver@ACME/payments"]) == 0
    assert main(["users", "grant", "bob", "viewer@acme"]) == 0
    assert main(["users", "grant", "bob", "approver"]) == 2
    assert "grant 'approver': expected role@org" in capsys.readouterr().err
    assert main(["users", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"name": "bob", "created_by": "root", "created_at": rows[0]["created_at"],
                     "grants": ["viewer@acme", "approver@acme/payments"]},
                    {"name": "root", "created_by": "root", "created_at": rows[1]["created_at"], "grants": ["admin@*"]}]
    assert main(["users", "revoke", "bob", "viewer@acme"]) == 0
    assert main(["users", "revoke", "bob", "viewer@acme"]) == 2
    assert "bob does not hold viewer@acme" in capsys.readouterr().err
    assert main(["users", "list"]) == 0
    assert "bob                              approver@acme/payments" in capsys.readouterr().out
    kinds = [r.kind for r in AuditLog().records()]
    assert kinds == ["access_denied", "user_added", "admin_bootstrapped", "user_added", "grant_added", "grant_added",
                     "grant_revoked"]


@pytest.mark.postgres
def test_the_role_table_lives_in_postgres_with_the_task_store(pg_url):
    grants = GrantStore(pg_url, audit=AuditLog(pg_url))
    grants.bootstrap_admin("root", operator="ops")
    grants.grant("Bob", Grant("approver", "acme"), by=grants.principal("root", "trusted_local"))
    assert grants.grants_for("BOB") == (Grant("approver", "acme"),)
    assert grants.audit.verify().problems == []


@pytest.mark.postgres
def test_racing_bootstraps_on_postgres_give_one_admin(pg_url):
    import itertools

    from tests.remediation.support import race

    grants = GrantStore(pg_url, audit=AuditLog(pg_url))
    names = itertools.count()
    assert race(lambda: grants.bootstrap_admin(f"root{next(names)}", operator="ops"), 4, AccessDenied) == \
        ["refused", "refused", "refused", "won"]
    assert sum(1 for u in grants.list() if Grant("admin", "*") in u.grants) == 1
