"""Sign-in on the dashboard with AppTest user simulation: what each role sees, the local mode, the sign-in page.

``at.user`` plays the cookie Streamlit sets after ``st.login`` (the token's claims plus
``is_logged_in``); ``at.secrets`` with an ``[auth]`` section plays a configured provider. The OIDC
flow itself runs for real in tests/dashboard/browser/test_signin.py.
"""

from __future__ import annotations

import pytest

from qlrf.db import database_url
from tests.dashboard.support import app, open_page, texts
from tests.sensors.support import PENDING, make_plan, store_at

AUTH = {"auth": {"client_id": "qlrf-dashboard", "client_secret": "not-used", "cookie_secret": "x" * 32,
                 "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
                 "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}}


def user(*roles: str, email: str = "Dana@Example.com") -> dict:
    return {"is_logged_in": True, "email": email, "name": "Dana", "qlrf_roles": list(roles)}


def signed_in(page: str, claims: dict, provider: bool = True):
    """The app run as `claims`, then switched to `page` (raises ValueError when the page is not in the navigation)."""
    at = app()
    if provider:
        at.secrets = dict(AUTH)
    at.user = claims
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def hidden(page: str, claims: dict) -> bool:
    try:
        signed_in(page, claims)
    except ValueError as exc:
        assert "Could not find a navigation page" in str(exc)
        return True
    return False


def sidebar(at) -> str:
    return " ".join(str(e.value) for kind in ("markdown", "caption") for e in getattr(at.sidebar, kind)).replace("\\", "")


@pytest.fixture()
def pending(isolated_env, monkeypatch, tmp_path):
    """A dev and a prod plan waiting for approval, no warehouse, no local user."""
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "no-warehouse"))
    monkeypatch.delenv("QLRF_DASHBOARD_LOCAL_USER", raising=False)
    monkeypatch.delenv("QLRF_DASHBOARD_LOCAL_ROLES", raising=False)
    store = store_at(database_url())
    dev = store.propose(make_plan("rp-lon1-dev", instances=2), "sensor:drift_findings_sensor", PENDING)
    prod = store.propose(make_plan("rp-fra1-prod", instances=2, environment="prod", autonomy_mode="canary_only",
                                   site="fra1"), "sensor:drift_findings_sensor", PENDING)
    return store, dev, prod


def test_a_configured_provider_shows_only_the_sign_in_page_to_a_stranger(pending, monkeypatch):
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_USER", "mallory")  # ignored once sign-in is configured
    at = app()
    at.secrets = dict(AUTH)
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Resilience Fabric"]
    assert "Not signed in" in sidebar(at) and "mallory" not in texts(at) + sidebar(at)
    assert "Sign in" in [b.label for b in at.sidebar.button]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("app_pages/approvals.py")


@pytest.mark.parametrize(("roles", "settings_hidden"), [(("viewer@acme",), True), (("admin@acme",), False)])
def test_settings_is_in_the_navigation_only_for_admins(pending, roles, settings_hidden):
    assert hidden("settings", user(*roles)) is settings_hidden
    assert not hidden("overview", user(*roles))


def test_a_viewer_sees_the_cards_but_no_decision_controls_and_cannot_propose(pending):
    store, dev, prod = pending
    at = signed_in("approvals", user("viewer@acme"))
    assert "Signed in as dana@example.com (viewer@acme)" in texts(at)
    assert "**Identity** · signed in" in sidebar(at) and "Sign out" in [b.label for b in at.sidebar.button]
    assert "Waiting for approval (2)" in texts(at)
    assert not [b for b in at.button if str(b.key).startswith(("approve-", "reject-", "modify-"))]
    assert "dana@example.com may not approve in unassigned" in texts(at)
    at.switch_page("app_pages/copilot.py").run()
    assert "without the operator role" in texts(at)


def test_an_approver_of_one_org_cannot_decide_a_task_of_unknown_org(pending):
    store, dev, _ = pending
    at = signed_in("approvals", user("approver@acme"))
    assert f"approve-{dev.id}" not in {b.key for b in at.button}
    assert "needs the approver role, they hold approver" not in texts(at)  # the held role is for acme only
    assert "may not approve in unassigned: that needs the approver role, they hold no role" in texts(at)


def test_an_approver_everywhere_decides_production_when_signed_in(pending):
    store, _, prod = pending
    at = signed_in("approvals", user("approver@*"))
    assert not at.button(key=f"approve-{prod.id}").disabled
    at.text_input(key=f"reason-{prod.id}").input("window agreed")
    at.button(key=f"approve-{prod.id}").click().run()
    assert not at.exception
    assert (store.get(prod.id).state, store.get(prod.id).approver) == ("approved", "dana@example.com")


def test_local_mode_is_labelled_and_refuses_production_even_for_a_local_admin(pending, monkeypatch):
    store, dev, prod = pending
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_USER", "Alice@Example.com")
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_ROLES", "admin@*")
    at = open_page("approvals")
    assert "**Identity** · local single-user mode" in sidebar(at)
    assert "Local single-user mode: decisions are recorded as alice@example.com" in texts(at)
    assert not at.sidebar.button  # no provider configured: no sign-in control
    assert at.button(key=f"approve-{prod.id}").disabled and not at.button(key=f"approve-{dev.id}").disabled
    assert at.text_input(key=f"reason-{prod.id}").disabled  # AppTest, like a browser, cannot type into it
    assert "production plans cannot be decided in local single-user mode" in texts(at)
    assert store.get(prod.id).state == "pending_approval"
    at.switch_page("app_pages/settings.py").run()  # the local admin opens Settings
    assert [t.value for t in at.title] == ["Settings"]


def test_bad_local_roles_name_the_variable_instead_of_a_traceback(pending, monkeypatch):
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_USER", "alice")
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_ROLES", "boss@acme")
    at = app().run()
    assert not at.exception
    assert "QLRF_DASHBOARD_LOCAL_ROLES: grant 'boss@acme'" in " ".join(e.value for e in at.error).replace("\\", "")


def test_a_token_without_usable_claims_is_refused_with_the_reason(pending):
    at = signed_in("overview", {"is_logged_in": True, "email": "dana@example.com", "qlrf_roles": ["king@acme"]})
    assert "Not signed in: sign-in refused: grant 'king@acme'" in texts(at)
    assert [t.value for t in at.title] == ["Resilience Fabric"]


def test_a_signed_in_user_without_roles_is_told_to_ask_for_one(pending):
    at = signed_in("overview", user())
    assert "Signed in as dana@example.com, who holds no roles" in texts(at)
    assert "Sign out" in [b.label for b in at.sidebar.button]


def test_a_role_revoked_in_the_role_table_mid_session_takes_effect_on_the_next_rerun(pending, monkeypatch):
    from dashboards.components import identity
    from qlrf.tenancy.roles import Grant

    store, dev, _ = pending
    table = {"dana@example.com": [Grant("approver", "*")]}  # the local role table, read on every rerun
    monkeypatch.setattr(identity, "stored_grants", lambda name: table.get(name, []))
    at = signed_in("approvals", user("viewer@*"))  # the token itself only lets Dana read
    assert not at.button(key=f"approve-{dev.id}").disabled
    at.text_input(key=f"reason-{dev.id}").input("checked")
    table.clear()  # revoked while the card is open
    at.button(key=f"approve-{dev.id}").click().run()
    assert not at.exception
    assert store.get(dev.id).state == "pending_approval"  # the callback re-checked and refused
    assert "may not approve in unassigned" in " ".join(e.value for e in at.error)
    assert f"approve-{dev.id}" not in {b.key for b in at.button}  # and the controls are gone
    [denied] = store.audit.records(subject=dev.id, kind="access_denied")
    assert (denied.actor, denied.data["action"], denied.data["mode"]) == ("dana@example.com", "approve", "signed_in")
    assert "may not approve in unassigned" in denied.data["why"]
    assert store.audit.verify().ok


def test_settings_shows_the_sign_in_configuration_without_its_secrets(pending):
    at = signed_in("settings", user("admin@*"))
    config = [d.value for d in at.dataframe if hasattr(d.value, "columns") and "key" in d.value.columns][0]
    shown = dict(zip(config["key"], config["value"], strict=True))
    assert shown["client_id"] == "qlrf-dashboard" and shown["redirect_uri"].endswith("/oauth2callback")
    assert shown["client_secret"] == shown["cookie_secret"] == "set (value hidden)"
    assert "not-used" not in texts(at) and "x" * 32 not in str(config.to_numpy())


def test_named_providers_get_one_sign_in_button_each(pending):
    at = app()
    at.secrets = {"auth": {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "x" * 32,
                           "keycloak": {"client_id": "a", "client_secret": "b", "server_metadata_url": "http://k"},
                           "okta": {"client_id": "c", "client_secret": "d", "server_metadata_url": "http://o"}}}
    at.run()
    assert not at.exception
    assert [b.label for b in at.sidebar.button] == ["Sign in with keycloak", "Sign in with okta"]


def test_sign_out_returns_to_the_sign_in_page(pending):
    at = signed_in("approvals", user("viewer@*"))
    at.sidebar.button(key="sign-out").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Resilience Fabric"] and "Not signed in" in sidebar(at)


def test_the_local_role_table_grants_a_signed_in_user_roles_their_token_lacks(pending):
    from qlrf.tenancy.store import GrantStore

    store, dev, _ = pending
    GrantStore(database_url()).bootstrap_admin("Dana@Example.com", operator="test-operator")  # admin@*
    at = signed_in("settings", user())  # the token carries no qlrf_roles
    assert [t.value for t in at.title] == ["Settings"]
    at.switch_page("app_pages/approvals.py").run()
    assert not at.button(key=f"approve-{dev.id}").disabled
