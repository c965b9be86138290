"""Loopback OpenID Connect provider: what ``st.login`` needs from Keycloak, Entra ID, Okta, Google or Clerk.

Serves the authorization-code flow the way a real provider answers it, so Streamlit's own client
(Authlib) runs unchanged against it:

* ``GET /.well-known/openid-configuration``: the discovery document (issuer, endpoints, RS256, S256 PKCE);
* ``GET /jwks``: the public signing key (RS256, ``kid``);
* ``GET /authorize``: checks ``response_type=code``, the client id and the registered redirect URI
  (``400`` otherwise, as providers do: never redirect to an unregistered URI), then signs in
  :attr:`OidcFake.user` without a login form and redirects back with ``code`` and ``state``;
* ``POST /token``: ``grant_type=authorization_code`` with client authentication (HTTP Basic or
  ``client_secret_post``), a single-use code bound to its redirect URI, and the PKCE verifier when a
  challenge was sent; answers an access token and an RS256 ID token carrying ``iss``, ``aud``,
  ``sub``, ``iat``, ``exp``, ``nonce`` and the user's claims (``email``, ``qlrf_roles``...);
* ``GET /userinfo``: the user's claims for the access token; ``GET /logout``: redirects to
  ``post_logout_redirect_uri``.

Attacks a test can switch on with :attr:`OidcFake.forge`: ``"expired"`` (``exp`` in the past),
``"foreign_key"`` (signed by a key not in the JWKS), ``"wrong_audience"`` and ``"wrong_nonce"``.
Time is an input: ``clock`` gives the seconds since the epoch used for ``iat``/``exp``.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.fakes.base import FakeHandler, HttpFake, RecordedRequest

FORGERIES = ("expired", "foreign_key", "wrong_audience", "wrong_nonce")


class OidcHandler(FakeHandler):
    def route(self, rec: RecordedRequest) -> None:
        fake: OidcFake = self.fake
        routes = {
            ("GET", "/.well-known/openid-configuration"): lambda: self.send_json(200, fake.discovery()),
            ("GET", "/jwks"): lambda: self.send_json(200, {"keys": [fake.key.as_dict(private=False)]}),
            ("GET", "/authorize"): lambda: self.authorize(rec),
            ("POST", "/token"): lambda: self.token(rec),
            ("GET", "/userinfo"): lambda: self.userinfo(rec),
            ("GET", "/logout"): lambda: self.logout(rec),
        }
        answer = routes.get((rec.method, rec.path))
        if answer is None:
            self.send_json(404, {"error": "not_found", "error_description": f"no route for {rec.method} {rec.path}"})
            return
        answer()

    def redirect(self, location: str) -> None:
        self.send_bytes(302, b"", {"Location": location}, content_type="text/plain")

    def authorize(self, rec: RecordedRequest) -> None:
        fake: OidcFake = self.fake
        p = rec.param
        if p("client_id") != fake.client_id:
            self.send_json(400, {"error": "unauthorized_client", "error_description": f"unknown client {p('client_id')!r}"})
            return
        if p("redirect_uri") not in fake.redirect_uris:
            self.send_json(400, {"error": "invalid_request", "error_description": "redirect_uri is not registered"})
            return
        back = p("redirect_uri")
        if p("response_type") != "code" or "openid" not in (p("scope") or "").split():
            self.redirect(f"{back}?{urlencode({'error': 'invalid_request', 'state': p('state') or ''})}")
            return
        code = fake.issue_code(redirect_uri=back, nonce=p("nonce"), challenge=p("code_challenge"),
                               method=p("code_challenge_method"))
        self.redirect(f"{back}?{urlencode({'code': code, 'state': p('state') or ''})}")

    def client_authenticated(self, rec: RecordedRequest, form: Mapping[str, str]) -> bool:
        fake: OidcFake = self.fake
        header = rec.authorization or ""
        if header.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
        else:
            cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        return secrets.compare_digest(cid, fake.client_id) and secrets.compare_digest(secret, fake.client_secret)

    def token(self, rec: RecordedRequest) -> None:
        fake: OidcFake = self.fake
        form = {k: v[0] for k, v in parse_qs(rec.text).items()}
        if not self.client_authenticated(rec, form):
            self.send_json(401, {"error": "invalid_client"})
            return
        if form.get("grant_type") != "authorization_code":
            self.send_json(400, {"error": "unsupported_grant_type"})
            return
        grant = fake.take_code(form.get("code", ""))
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            self.send_json(400, {"error": "invalid_grant", "error_description": "unknown, used or mismatched code"})
            return
        if grant["challenge"]:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            expected = digest if grant["method"] == "S256" else verifier
            if not secrets.compare_digest(expected, grant["challenge"]):
                self.send_json(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
                return
        access = secrets.token_urlsafe(24)
        fake.access_tokens[access] = dict(grant["claims"])
        self.send_json(200, {"access_token": access, "token_type": "Bearer", "expires_in": fake.ttl,
                             "scope": "openid email profile", "id_token": fake.id_token(grant["claims"], grant["nonce"])},
                       headers={"Cache-Control": "no-store"})

    def userinfo(self, rec: RecordedRequest) -> None:
        header = rec.authorization or ""
        claims = self.fake.access_tokens.get(header[7:]) if header.lower().startswith("bearer ") else None
        if claims is None:
            self.send_json(401, {"error": "invalid_token"}, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return
        self.send_json(200, claims)

    def logout(self, rec: RecordedRequest) -> None:
        back = rec.param("post_logout_redirect_uri")
        if back:
            self.redirect(back)
        else:
            self.send_bytes(200, b"signed out", content_type="text/plain")


class OidcFake(HttpFake):
    """An OIDC provider on 127.0.0.1; set :attr:`user` (claims) before the browser signs in."""

    handler = OidcHandler
    thread_name = "oidc-fake"

    def __init__(self, *, client_id: str = "qlrf-dashboard", client_secret: str | None = None,
                 redirect_uris: tuple[str, ...] = (), user: Mapping[str, Any] | None = None,
                 clock: Callable[[], float] = time.time, ttl: int = 300) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret or secrets.token_urlsafe(24)
        self.redirect_uris = list(redirect_uris)
        self.user: dict[str, Any] = dict(user or {"sub": "u-1", "email": "alice@example.com"})
        self.clock = clock
        self.ttl = ttl
        self.forge: str | None = None
        self.key = RSAKey.generate_key(2048, parameters={"kid": "fake-1", "use": "sig", "alg": "RS256"})
        self._foreign = RSAKey.generate_key(2048, parameters={"kid": "fake-1", "use": "sig", "alg": "RS256"})
        self._codes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.access_tokens: dict[str, dict[str, Any]] = {}
        self.issued: list[dict[str, Any]] = []  # every ID token's claims, for assertions

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"

    def discovery(self) -> dict[str, Any]:
        b = self.base_url
        return {
            "issuer": b, "authorization_endpoint": f"{b}/authorize", "token_endpoint": f"{b}/token",
            "userinfo_endpoint": f"{b}/userinfo", "jwks_uri": f"{b}/jwks", "end_session_endpoint": f"{b}/logout",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"], "grant_types_supported": ["authorization_code"],
            "claims_supported": ["sub", "email", "name", "qlrf_roles"],
        }

    def issue_code(self, *, redirect_uri: str, nonce: str | None, challenge: str | None, method: str | None) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = {"redirect_uri": redirect_uri, "nonce": nonce, "challenge": challenge,
                                 "method": method or "plain", "claims": dict(self.user)}
        return code

    def take_code(self, code: str) -> dict[str, Any] | None:
        """The grant behind `code`, once: a replayed code is refused like a provider does."""
        with self._lock:
            return self._codes.pop(code, None)

    def id_token(self, claims: Mapping[str, Any], nonce: str | None) -> str:
        now = int(self.clock())
        body: dict[str, Any] = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + self.ttl,
                                "auth_time": now, **claims}
        body.setdefault("sub", str(claims.get("email", "user")))
        if nonce:
            body["nonce"] = nonce
        key = self.key
        if self.forge == "expired":
            body["iat"], body["exp"] = now - 2 * self.ttl, now - self.ttl
        elif self.forge == "foreign_key":
            key = self._foreign  # same kid, another key: only the signature check can tell
        elif self.forge == "wrong_audience":
            body["aud"] = "someone-else"
        elif self.forge == "wrong_nonce":
            body["nonce"] = "replayed-" + (nonce or "")
        elif self.forge is not None:
            raise ValueError(f"unknown forgery {self.forge!r}: expected one of {', '.join(FORGERIES)}")
        self.issued.append(body)
        return jwt.encode({"alg": "RS256", "kid": key.kid}, body, key)


__all__ = ["FORGERIES", "OidcFake"]
