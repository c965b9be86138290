"""Who runs the CLI: a verified sign-in token, or the trusted local operator; never a typed name alone.

Two ways, checked in this order (:func:`cli_principal`):

* **Trusted local mode**: ``QLRF_CLI_TRUSTED_LOCAL_USER=<name>`` says this machine is a single
  operator's, and names them. Commands then act as that user, and ``--as USER`` may name another
  (for a shared operator console where the person at the keyboard is vouched for by the machine's
  owner). ``--as`` anywhere else is refused: a name typed on a command line proves nothing.
* **Sign-in**: ``QLRF_ID_TOKEN`` holds an OIDC ID token (e.g. from ``oidc-agent`` or the provider's
  CLI). It is verified with PyJWT against the issuer's signing keys (``QLRF_OIDC_JWKS_URL``, or the
  ``jwks_uri`` of ``QLRF_OIDC_ISSUER``'s discovery document), for issuer ``QLRF_OIDC_ISSUER`` and
  audience ``QLRF_OIDC_AUDIENCE``; expiry and not-before are judged against the clock given (an input,
  so tests never depend on today). A forged, expired, wrong-audience or claim-less token is refused.

Grants come from the local role table (:class:`~qlrf.tenancy.store.GrantStore`), read per action, plus
the token's role claim (``QLRF_OIDC_ROLES_CLAIM``, default ``qlrf_roles``). Every refusal writes an
``access_denied`` audit record (who, why) before it is raised.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from qlrf.envparse import environ, text
from qlrf.tenancy.claims import DEFAULT_ROLES_CLAIM, ClaimError, grants_from_claims, identity_from_claims
from qlrf.tenancy.roles import AccessDenied, Principal

LOCAL_USER_VARIABLE = "QLRF_CLI_TRUSTED_LOCAL_USER"
TOKEN_VARIABLE = "QLRF_ID_TOKEN"
ISSUER_VARIABLE = "QLRF_OIDC_ISSUER"
AUDIENCE_VARIABLE = "QLRF_OIDC_AUDIENCE"
JWKS_VARIABLE = "QLRF_OIDC_JWKS_URL"
ROLES_CLAIM_VARIABLE = "QLRF_OIDC_ROLES_CLAIM"
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA")  # never "none", never HMAC
LEEWAY_SECONDS = 60


class IdentityRefused(AccessDenied):
    """Nobody could be identified (no sign-in, a bad token, ``--as`` outside trusted local mode)."""


def _refuse(audit: Any, why: str, *, who: str | None = None, mode: str = "none") -> IdentityRefused:
    from qlrf.tenancy.enforce import deny_record  # the audit log's imports: only when refusing

    deny_record(audit, who=who, action="sign_in", org=None, project=None, why=why, subject="sign-in", mode=mode)
    return IdentityRefused(why)


def jwks_url(env: Mapping[str, str]) -> str:
    """The signing keys' URL: configured, else the issuer's discovery document's ``jwks_uri``."""
    configured = text(env, JWKS_VARIABLE)
    if configured:
        return configured
    issuer = text(env, ISSUER_VARIABLE)
    if not issuer:
        raise ValueError(f"{ISSUER_VARIABLE} is not set: cannot verify {TOKEN_VARIABLE}")
    import urllib.request  # only when a token is verified: not on every CLI command's start-up

    discovery = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        with urllib.request.urlopen(discovery, timeout=10) as reply:  # noqa: S310 - the configured issuer
            return json.load(reply)["jwks_uri"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{ISSUER_VARIABLE}: cannot read the signing keys' address from {discovery} "
                         f"({type(exc).__name__}); set {JWKS_VARIABLE}") from None


def verify_token(token: str, env: Mapping[str, str], *, now: datetime,
                 signing_key: Callable[[str], Any] | None = None) -> dict:
    """The claims of a verified ID token, or ValueError saying why not (never the token itself).

    `signing_key(token)` returns the key that signed it (default: PyJWT's JWKS client over
    :func:`jwks_url`)."""
    import jwt

    issuer, audience = text(env, ISSUER_VARIABLE), text(env, AUDIENCE_VARIABLE)
    if not issuer or not audience:
        raise ValueError(f"sign-in is not configured: set {ISSUER_VARIABLE} and {AUDIENCE_VARIABLE} to verify "
                         f"{TOKEN_VARIABLE}")
    if signing_key is None:
        client = jwt.PyJWKClient(jwks_url(env), cache_keys=True, timeout=10)

        def signing_key(t: str) -> Any:
            return client.get_signing_key_from_jwt(t).key
    try:
        key = signing_key(token)
        claims = jwt.decode(token, key, algorithms=list(ALGORITHMS), audience=audience, issuer=issuer,
                            options={"require": ["exp", "iss", "aud"], "verify_exp": False, "verify_nbf": False,
                                     "verify_iat": False})
    except jwt.PyJWKClientError as exc:
        raise ValueError(f"{TOKEN_VARIABLE}: no signing key for it at the issuer ({exc})") from None
    except jwt.InvalidTokenError as exc:
        raise ValueError(f"{TOKEN_VARIABLE} refused: {exc}") from None
    stamp = now.astimezone(UTC).timestamp()
    if not isinstance(claims.get("exp"), (int, float)) or stamp > claims["exp"] + LEEWAY_SECONDS:
        raise ValueError(f"{TOKEN_VARIABLE} refused: the token has expired (sign in again)")
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and stamp + LEEWAY_SECONDS < nbf:
        raise ValueError(f"{TOKEN_VARIABLE} refused: the token is not valid yet")
    return claims


def cli_principal(as_user: str | None, env: Mapping[str, str] | None, store: Any, *, now: datetime | None = None,
                  signing_key: Callable[[str], Any] | None = None) -> Principal:
    """The CLI caller as a :class:`Principal` with their current grants; :class:`IdentityRefused`
    (audited in ``store.audit``) when nobody can be identified. `store` is a GrantStore."""
    from qlrf.remediation.approvals import normalise_identity

    env = environ(env)
    audit = store.audit
    local = text(env, LOCAL_USER_VARIABLE)
    if as_user is not None:
        if not local:
            raise _refuse(audit, f"--as: only allowed in trusted local mode ({LOCAL_USER_VARIABLE}=<operator>); "
                                 f"otherwise you act as the signed-in user ({TOKEN_VARIABLE})", who=normalise_identity(as_user) or None)
        if not normalise_identity(as_user):
            raise _refuse(audit, "--as: must name a user", mode="trusted_local")
        return store.principal(as_user, "trusted_local")
    if local:
        if not normalise_identity(local):
            raise ValueError(f"{LOCAL_USER_VARIABLE}: must name the local operator")
        return store.principal(local, "trusted_local")
    token = text(env, TOKEN_VARIABLE)
    if not token:
        raise _refuse(audit, f"nobody is signed in: set {TOKEN_VARIABLE} (an ID token from your identity provider) "
                             f"or configure the trusted local mode ({LOCAL_USER_VARIABLE}=<operator>)")
    try:
        claims = verify_token(token, env, now=now or datetime.now(UTC), signing_key=signing_key)
        name = identity_from_claims(claims)
        extra = grants_from_claims(claims, text(env, ROLES_CLAIM_VARIABLE, DEFAULT_ROLES_CLAIM))
    except ClaimError as exc:
        raise _refuse(audit, f"{TOKEN_VARIABLE} refused: {exc}", mode="signed_in") from None
    except ValueError as exc:
        raise _refuse(audit, str(exc), mode="signed_in") from None
    return store.principal(name, "signed_in", extra)


__all__ = [
    "AUDIENCE_VARIABLE",
    "ISSUER_VARIABLE",
    "JWKS_VARIABLE",
    "LOCAL_USER_VARIABLE",
    "ROLES_CLAIM_VARIABLE",
    "TOKEN_VARIABLE",
    "IdentityRefused",
    "cli_principal",
    "verify_token",
]
