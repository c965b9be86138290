"""Sign-in for real: `streamlit run` with a secrets.toml pointing at the loopback OIDC provider, driven by Chromium.

Proves the whole authorization-code flow Streamlit runs (discovery, PKCE, code exchange, RS256 ID
token checked against the JWKS, the auth cookie) ends with the token's email and roles on the
page, and that a forged or expired ID token leaves the visitor signed out (Streamlit refuses the
token exchange and logs it; the page offers sign-in again).
"""

from __future__ import annotations

import secrets
import time

import pytest

from qlrf.envparse import environ
from tests.dashboard.browser.harness import (
    ROOT,
    RUNNING,
    exceptions,
    free_port,
    start_streamlit,
    stop,
    wait_healthy,
)
from tests.fakes.oidc import OidcFake

LABELS = "return [...document.querySelectorAll('button')].map(b => b.innerText.trim())"
CLICK = ("const b = [...document.querySelectorAll('button')].find(b => b.innerText.trim() === arguments[0]);"
         "if (b) { b.click(); return true; } return false;")
USER = {"sub": "u-42", "email": "Dana@Example.com", "name": "Dana", "qlrf_roles": ["approver@acme", "viewer@beta"]}


@pytest.fixture(scope="module")
def signin_server(browser_deps, tmp_path_factory):
    """The dashboard with sign-in on (no warehouse: the flow is the point), and the provider it trusts.

    One server for the module (each test has its own fresh browser profile, so no cookie carries over)."""
    tmp_path = tmp_path_factory.mktemp("signin")
    port = free_port()
    callback = f"http://127.0.0.1:{port}/oauth2callback"
    with OidcFake(redirect_uris=(callback,), user=USER) as provider:
        secrets_file = tmp_path / "secrets.toml"
        secrets_file.write_text(
            "[auth]\n"
            f'redirect_uri = "{callback}"\n'
            f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
            f'client_id = "{provider.client_id}"\n'
            f'client_secret = "{provider.client_secret}"\n'
            f'server_metadata_url = "{provider.metadata_url}"\n'
        )
        env = {**environ(), "QLRF_WAREHOUSE": str(tmp_path / "empty"), "QLRF_HOME": str(tmp_path / "home"),
               "PYTHONPATH": str(ROOT),
               # a local user must NOT apply once a provider is configured: sign-in is then the only way in
               "QLRF_DASHBOARD_LOCAL_USER": "mallory@example.com"}
        log = tmp_path / "streamlit.log"
        server = start_streamlit(env, port, log, ("--secrets.files", str(secrets_file)))
        try:
            wait_healthy(port, server)
            yield f"http://127.0.0.1:{port}", provider, log
        finally:
            stop(server)


def wait_for_text(driver, text: str, timeout: float = 20) -> str:
    """The page body once it contains `text` (Streamlit renders over a websocket, after the load).

    Read through JavaScript: Streamlit redraws elements while the script runs, so a held element goes stale."""
    deadline = time.monotonic() + timeout
    body = ""
    while time.monotonic() < deadline:
        body = driver.execute_script("return document.body.innerText") or ""
        if text in body:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not on the page after {timeout} s; it says: {body[:800]}")


def click_button(driver, label: str, timeout: float = 20) -> None:
    """Click the first button labelled `label` once the script has drawn it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.execute_script(CLICK, label):
            return
        time.sleep(0.2)
    raise AssertionError(f"no {label!r} button; buttons: {driver.execute_script(LABELS)}")


def settled(driver, text: str, timeout: float = 20) -> str:
    """The body once `text` is shown, the script has stopped running and a Sign in/out button is drawn."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = wait_for_text(driver, text, timeout)
        labels = set(driver.execute_script(LABELS))
        if not driver.find_elements(By.CSS_SELECTOR, RUNNING) and labels & {"Sign in", "Sign out"}:
            return body
        time.sleep(0.2)
    raise AssertionError(f"the page did not settle on {text!r} within {timeout} s")


@pytest.mark.slow
def test_sign_in_through_the_provider_shows_the_tokens_identity_and_roles(signin_server, driver):
    base, provider, _ = signin_server
    provider.forge = None
    provider.clear_requests()
    driver.get(base)
    before = settled(driver, "Not signed in")
    assert "mallory" not in before and "Overview" not in before  # anonymous: only the sign-in page

    click_button(driver, "Sign in")
    body = settled(driver, "Signed in as dana@example.com")
    assert "approver@acme" in body and "viewer@beta" in body
    assert "Overview" in body and "Approvals" in body and "Settings" not in body  # navigation from the roles
    assert not exceptions(driver), exceptions(driver)
    assert [r.path for r in provider.requests if r.path in ("/authorize", "/token")] == ["/authorize", "/token"]
    assert provider.issued[-1]["email"] == "Dana@Example.com" and provider.issued[-1]["nonce"]

    click_button(driver, "Sign out")
    assert "Signed in as" not in settled(driver, "Not signed in")


@pytest.mark.slow
@pytest.mark.parametrize("forgery", ["expired", "foreign_key"])
def test_a_forged_or_expired_id_token_leaves_the_visitor_signed_out(signin_server, driver, forgery):
    base, provider, log = signin_server
    provider.forge = forgery
    provider.clear_requests()
    refusals = log.read_text().count("OAuth token exchange failed")
    driver.get(base)
    settled(driver, "Not signed in")
    click_button(driver, "Sign in")
    deadline = time.monotonic() + 20
    while "/token" not in [r.path for r in provider.requests] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "/token" in [r.path for r in provider.requests], "the browser never reached the token exchange"
    while log.read_text().count("OAuth token exchange failed") == refusals and time.monotonic() < deadline:
        time.sleep(0.2)
    assert log.read_text().count("OAuth token exchange failed") == refusals + 1  # Streamlit refused the token
    body = settled(driver, "Not signed in")
    assert "Signed in as" not in body and "dana" not in body.lower()
