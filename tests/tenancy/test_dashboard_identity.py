"""Dashboard identity rules without Streamlit: claims/env -> Principal, visible pages, decision refusals."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from qlrf.tenancy.claims import ClaimError
from qlrf.tenancy.dashboard_identity import (
    ANONYMOUS,
    ANONYMOUS_PAGES,
    LOCAL,
    PAGES,
    SIGNED_IN,
    decision_refusal,
    label,
    local_grants,
    may_anywhere,
    resolve,
    sign_in_settings,
    task_org,
    task_project,
    visible_pages,
)
from qlrf.tenancy.roles import Grant

LOCAL_ENV = {"QLRF_DASHBOARD_LOCAL_USER": " Alice@Example.COM "}


def signed(roles, email="Bob@Example.com", **extra):
    return {"is_logged_in": True, "email": email, "qlrf_roles": roles, **extra}


def test_signed_in_name_and_grants_come_from_the_claims_and_the_store():
    seen = []

    def stored(name):
        seen.append(name)
        return [Grant("admin", "beta")]

    s = resolve(signed(["approver@acme", "viewer@beta/payments"]), provider_configured=True, env={}, stored=stored)
    assert (s.mode, s.name) == (SIGNED_IN, "bob@example.com")
    assert seen == ["bob@example.com"]  # the store is asked with the normalised name, never the raw claim
    assert s.principal.role_in("acme") == "approver" and s.principal.role_in("beta") == "admin"
    assert visible_pages(s) == list(PAGES)  # admin somewhere: settings too


def test_signed_in_wins_over_the_local_user_and_local_mode_needs_no_provider():
    assert resolve(signed(["viewer@acme"]), provider_configured=False, env=LOCAL_ENV).mode == SIGNED_IN
    with_provider = resolve({"is_logged_in": False}, provider_configured=True, env=LOCAL_ENV)
    assert (with_provider.mode, with_provider.name) == (ANONYMOUS, None)  # a stale local user cannot bypass sign-in
    assert visible_pages(with_provider) == []


def test_local_mode_defaults_to_approver_everywhere_but_never_production():
    s = resolve(None, provider_configured=False, env=LOCAL_ENV)
    assert (s.mode, s.name) == (LOCAL, "alice@example.com")
    assert s.principal.grants == (Grant("approver", "*"),)
    assert "settings" not in visible_pages(s) and "approvals" in visible_pages(s)
    assert decision_refusal(s, "acme", "dev", "sensor:x") is None
    for env in ("prod", "Production"):
        assert "cannot be decided in local single-user mode" in decision_refusal(s, "acme", env, "sensor:x")
    admin = resolve(None, provider_configured=False, env={**LOCAL_ENV, "QLRF_DASHBOARD_LOCAL_ROLES": "admin@*"})
    assert "production plans cannot" in decision_refusal(admin, "acme", "prod", "sensor:x")  # roles do not lift it
    assert "Local single-user mode" in label(s) and "alice@example.com" in label(s)


def test_local_roles_are_parsed_strictly_and_name_the_variable():
    assert local_grants({"QLRF_DASHBOARD_LOCAL_ROLES": "viewer@acme, operator@beta/web"}) == (
        Grant("viewer", "acme"), Grant("operator", "beta", "web"))
    with pytest.raises(ClaimError, match="QLRF_DASHBOARD_LOCAL_ROLES: grant 'boss@acme'"):
        local_grants({"QLRF_DASHBOARD_LOCAL_ROLES": "boss@acme"})
    with pytest.raises(ClaimError, match="QLRF_DASHBOARD_LOCAL_ROLES: grant 'approver'"):
        local_grants({"QLRF_DASHBOARD_LOCAL_ROLES": "approver"})


def test_anonymous_without_provider_reads_but_decides_nothing():
    s = resolve({"email": "test@example.com"}, provider_configured=False, env={})  # not is_logged_in: ignored
    assert (s.mode, s.name) == (ANONYMOUS, None)
    assert set(visible_pages(s)) == ANONYMOUS_PAGES and "settings" not in visible_pages(s)
    assert "QLRF_DASHBOARD_LOCAL_USER" in decision_refusal(s, "acme", "dev", "x")
    assert not may_anywhere(s, "read")  # nobody: every action refused, reading is the page's default
    assert "anonymous, read-only" in label(s)


@pytest.mark.parametrize(("roles", "pages_hidden"), [
    (["viewer@acme"], {"settings"}),
    (["operator@acme"], {"settings"}),
    (["approver@acme"], {"settings"}),
    (["admin@acme"], set()),
    ([], set(PAGES)),
])
def test_pages_follow_the_role(roles, pages_hidden):
    s = resolve(signed(roles), provider_configured=True, env={})
    assert set(PAGES) - set(visible_pages(s)) == pages_hidden


def test_decisions_need_the_approver_role_in_the_tasks_org():
    s = resolve(signed(["approver@acme", "operator@beta"]), provider_configured=True, env={})
    assert decision_refusal(s, "acme", "prod", "sensor:x") is None  # signed in: production is allowed
    refused = decision_refusal(s, "beta", "dev", "sensor:x")
    assert refused == "bob@example.com may not approve in beta: that needs the approver role, they hold operator"
    unplaced = SimpleNamespace(org=None, project=None, plan_yaml="metadata: {id: p}\n")
    assert "may not approve in unassigned" in decision_refusal(s, task_org(unplaced), "dev", "x")
    assert "you requested this plan" in decision_refusal(s, "acme", "dev", " BOB@example.com ")
    assert may_anywhere(s, "propose") and not may_anywhere(s, "admin")


def test_a_task_org_is_read_case_insensitively_and_defaults_to_every_org():
    assert task_org(SimpleNamespace(org="ACME")) == "acme"
    assert task_org(SimpleNamespace(org=None, plan_yaml="metadata: {org: Initech}\n")) == "initech"  # the plan's
    assert task_org(SimpleNamespace(org=None, plan_yaml="metadata: {id: p}\n")) == "unassigned"
    assert (task_project(SimpleNamespace(project="Web")),
            task_project(SimpleNamespace(project=None, plan_yaml="metadata: {id: p}\n"))) == ("web", None)


def test_a_project_grant_decides_only_its_projects_tasks():
    s = resolve(signed(["approver@acme/web"]), provider_configured=True, env={})
    assert decision_refusal(s, "acme", "dev", "x", "web") is None
    assert "may not approve in acme/payments" in decision_refusal(s, "acme", "dev", "x", "payments")
    assert "may not approve in acme" in decision_refusal(s, "acme", "dev", "x")  # an org-wide task


@pytest.mark.parametrize("claims", [
    {"is_logged_in": True, "name": "No Email"},  # no identity claim
    signed("admin@acme", qlrf_roles="king@acme"),  # a malformed grant: refused, not skipped
])
def test_claims_that_cannot_establish_a_user_leave_nobody_signed_in(claims):
    s = resolve(claims, provider_configured=True, env={})
    assert (s.mode, s.name) == (ANONYMOUS, None)
    assert s.problem.startswith("sign-in refused:")
    assert visible_pages(s) == []
    assert "Not signed in: sign-in refused" in label(s)


def test_an_unreadable_role_table_fails_closed_to_the_tokens_grants():
    def broken(name):
        raise ConnectionError("postgres is down")

    s = resolve(signed(["viewer@acme"]), provider_configured=True, env={}, stored=broken)
    assert (s.mode, s.name) == (SIGNED_IN, "bob@example.com")
    assert s.principal.grants == (Grant("viewer", "acme"),)
    assert "role table could not be read (ConnectionError)" in label(s) and "postgres" not in label(s)


def test_sign_in_settings_never_show_a_secret():
    rows = sign_in_settings({"redirect_uri": "http://x/oauth2callback", "cookie_secret": "c00kie", "client_secret": "s3cret",
                             "okta": {"client_id": "abc", "client_secret": "0kta-s3cret", "server_metadata_url": "https://o"}})
    shown = {(r["provider"], r["key"]): r["value"] for r in rows}
    assert shown[("(default)", "redirect_uri")] == "http://x/oauth2callback"
    assert shown[("okta", "client_id")] == "abc" and shown[("okta", "client_secret")] == "set (value hidden)"
    assert not any("s3cret" in r["value"] or "c00kie" in r["value"] for r in rows)
    assert sign_in_settings(None)[0]["value"].startswith("not configured")
