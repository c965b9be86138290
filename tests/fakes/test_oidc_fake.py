"""The loopback OIDC provider speaks the protocol Authlib (Streamlit's client) expects, and its forgeries fail
the checks a relying party makes; the shipped secrets.toml example has the keys ``st.login`` needs."""

from __future__ import annotations

import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import BadSignatureError, ExpiredTokenError, InvalidClaimError
from joserfc.jwk import KeySet

from tests.fakes.oidc import OidcFake

CALLBACK = "http://127.0.0.1:8501/oauth2callback"
NOW = 1_800_000_000.0  # a fixed clock: nothing here depends on today's date


@pytest.fixture()
def provider():
    with OidcFake(redirect_uris=(CALLBACK,), user={"sub": "u-1", "email": "Dana@Example.com",
                                                    "qlrf_roles": ["approver@acme"]}, clock=lambda: NOW) as fake:
        yield fake


def code_flow(provider: OidcFake) -> tuple[dict, str, KeySet]:
    """The authorization-code flow with PKCE and a nonce, as Authlib runs it; (token, nonce, provider keys)."""
    meta = requests.get(provider.metadata_url, timeout=5).json()
    client = OAuth2Session(provider.client_id, provider.client_secret, scope="openid email profile",
                           redirect_uri=CALLBACK, code_challenge_method="S256")
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = client.create_authorization_url(meta["authorization_endpoint"], nonce=nonce,
                                                 code_verifier=verifier)
    back = requests.get(url, allow_redirects=False, timeout=5)
    assert back.status_code == 302 and back.headers["Location"].startswith(CALLBACK)
    assert parse_qs(urlsplit(back.headers["Location"]).query)["state"] == [state]
    token = client.fetch_token(meta["token_endpoint"], authorization_response=back.headers["Location"],
                               code_verifier=verifier)
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=5).json())
    return token, nonce, keys


def verified(provider: OidcFake, token: dict, nonce: str, keys: KeySet) -> dict:
    """The ID token's claims after the relying party's checks (signature, iss, aud, exp at NOW, nonce)."""
    claims = jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims
    jwt.JWTClaimsRegistry(now=int(NOW), iss={"essential": True, "value": provider.issuer},
                          aud={"essential": True, "value": provider.client_id},
                          nonce={"essential": True, "value": nonce}).validate(claims)
    return claims


def test_the_code_flow_yields_a_verifiable_id_token_with_the_roles_claim(provider):
    token, nonce, keys = code_flow(provider)
    claims = verified(provider, token, nonce, keys)
    assert claims["email"] == "Dana@Example.com" and claims["qlrf_roles"] == ["approver@acme"]
    assert claims["exp"] == int(NOW) + provider.ttl
    info = requests.get(f"{provider.base_url}/userinfo", timeout=5,
                        headers={"Authorization": f"Bearer {token['access_token']}"})
    assert info.json()["email"] == "Dana@Example.com"


@pytest.mark.parametrize(("forgery", "error"), [("expired", ExpiredTokenError), ("foreign_key", BadSignatureError),
                                                ("wrong_audience", InvalidClaimError), ("wrong_nonce", InvalidClaimError)])
def test_each_forgery_fails_the_relying_partys_checks(provider, forgery, error):
    provider.forge = forgery
    token, nonce, keys = code_flow(provider)
    with pytest.raises(error):
        verified(provider, token, nonce, keys)


def test_the_provider_refuses_what_a_real_one_refuses(provider):
    bad_redirect = requests.get(f"{provider.base_url}/authorize", allow_redirects=False, timeout=5, params={
        "response_type": "code", "client_id": provider.client_id, "redirect_uri": "http://evil.example/cb",
        "scope": "openid", "state": "s"})
    assert bad_redirect.status_code == 400  # never redirected to an unregistered URI
    code = provider.issue_code(redirect_uri=CALLBACK, nonce=None, challenge=None, method=None)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    wrong_secret = requests.post(f"{provider.base_url}/token", data=form, auth=(provider.client_id, "nope"), timeout=5)
    assert wrong_secret.json()["error"] == "invalid_client"
    ok = requests.post(f"{provider.base_url}/token", data=form, auth=(provider.client_id, provider.client_secret),
                       timeout=5)
    replay = requests.post(f"{provider.base_url}/token", data=form, auth=(provider.client_id, provider.client_secret),
                           timeout=5)
    assert ok.status_code == 200 and replay.json()["error"] == "invalid_grant"  # a code is single-use


def test_the_shipped_secrets_example_has_what_st_login_needs():
    root = Path(__file__).resolve().parents[2]
    auth = tomllib.loads((root / ".streamlit" / "secrets.toml.example").read_text())["auth"]
    assert auth["redirect_uri"].endswith("/oauth2callback")
    assert {"cookie_secret", "client_id", "client_secret", "server_metadata_url"} <= set(auth)
    assert "**/.streamlit/secrets.toml" in (root / ".gitignore").read_text().splitlines()
