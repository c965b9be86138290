"""The CLI principal: trusted local mode and ``--as``, or an ID token verified against the issuer's
keys, with time as an input; grants from the role table plus the token's claims."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qlrf.remediation.audit import AuditLog
from qlrf.tenancy.identity import IdentityRefused, cli_principal, verify_token
from qlrf.tenancy.roles import Grant
from qlrf.tenancy.store import GrantStore
from tests.tenancy.issuer import OidcIssuer
from tests.tenancy.support import TEST_ADMIN

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
T = int(NOW.timestamp())


@pytest.fixture(scope="module")
def issuer():
    with OidcIssuer() as fake:
        yield fake


@pytest.fixture()
def grants(tmp_path) -> GrantStore:
    url = f"sqlite:///{tmp_path / 'roles.db'}"
    store = GrantStore(url, audit=AuditLog(url))
    store.grant("bob", Grant("approver", "acme"), by=TEST_ADMIN)
    return store


def test_a_token_is_valid_until_it_expires_by_the_clock_given(issuer):
    token = issuer.mint(issuer.claims(T, email="bob"))  # exp = T + 600
    assert verify_token(token, issuer.env(), now=NOW)["email"] == "bob"
    late = datetime.fromtimestamp(T + 600 + 61, UTC)  # past the 60 s leeway
    with pytest.raises(ValueError, match="the token has expired"):
        verify_token(token, issuer.env(), now=late)
    early = datetime.fromtimestamp(T - 3600, UTC)
    with pytest.raises(ValueError, match="not valid yet"):
        verify_token(issuer.mint({**issuer.claims(T, email="bob"), "nbf": T}), issuer.env(), now=early)


def test_the_keys_come_from_discovery_or_the_configured_jwks_url(issuer):
    token = issuer.mint(issuer.claims(T, sub="u-1"))
    verify_token(token, {**issuer.env(), "QLRF_OIDC_JWKS_URL": f"{issuer.issuer}/jwks"}, now=NOW)
    paths = [r.path for r in issuer.requests]
    assert "/.well-known/openid-configuration" in paths and paths.count("/jwks") >= 2


def test_sign_in_needs_issuer_and_audience(issuer):
    with pytest.raises(ValueError, match="set QLRF_OIDC_ISSUER and QLRF_OIDC_AUDIENCE"):
        verify_token("x.y.z", {}, now=NOW)


def test_a_token_principal_holds_table_and_claim_grants(issuer, grants):
    token = issuer.mint(issuer.claims(T, email="Bob", qlrf_roles=["operator@globex"]))
    p = cli_principal(None, {**issuer.env(), "QLRF_ID_TOKEN": token}, grants, now=NOW)
    assert (p.name, p.mode) == ("bob", "signed_in")
    assert set(p.grants) == {Grant("approver", "acme"), Grant("operator", "globex")}


def test_trusted_local_mode_names_the_operator_and_allows_as(grants):
    env = {"QLRF_CLI_TRUSTED_LOCAL_USER": "Ops"}
    assert cli_principal(None, env, grants).name == "ops"
    p = cli_principal("BOB", env, grants)
    assert (p.name, p.mode, p.grants) == ("bob", "trusted_local", (Grant("approver", "acme"),))
    with pytest.raises(IdentityRefused, match="--as: must name a user"):
        cli_principal("  ", env, grants)


def test_nobody_and_as_outside_local_mode_are_refused_and_audited(grants):
    with pytest.raises(IdentityRefused, match="nobody is signed in"):
        cli_principal(None, {}, grants)
    with pytest.raises(IdentityRefused, match="--as: only allowed in trusted local mode"):
        cli_principal("bob", {}, grants)
    denied = [r for r in grants.audit.records() if r.kind == "access_denied"]
    assert [(r.actor, r.data["action"]) for r in denied] == [("anonymous", "sign_in"), ("bob", "sign_in")]


def test_an_unreachable_issuer_is_a_refusal_naming_the_variable(grants):
    from tests.fakes.base import free_port

    env = {"QLRF_OIDC_ISSUER": f"http://127.0.0.1:{free_port()}", "QLRF_OIDC_AUDIENCE": "qlrf-cli", "QLRF_ID_TOKEN": "a.b.c"}
    with pytest.raises(IdentityRefused, match="QLRF_OIDC_ISSUER: cannot read the signing keys' address"):
        cli_principal(None, env, grants, now=NOW)
