"""Grants from sign-in token claims: the one parser the dashboard, the API and the CLI share.

Why here: every identity provider (Clerk, Entra ID, Okta, Keycloak, Google) can put custom claims in
an ID token, but each door parsing them its own way would let one door read ``admin`` where another
reads nothing. The claim is a list of ``role@org`` or ``role@org/project`` strings (``role@*`` for
every organisation); anything else is refused with a message naming the bad entry, never skipped,
so a typo in the provider's mapping cannot silently widen or narrow access.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qlrf.tenancy.roles import ALL_ORGS, Grant, Principal

DEFAULT_ROLES_CLAIM = "qlrf_roles"
IDENTITY_CLAIMS = ("email", "preferred_username", "sub")


class ClaimError(ValueError):
    """A token's claims cannot establish who the user is or what they hold."""


def parse_grant(text: str) -> Grant:
    """``approver@acme`` or ``viewer@acme/payments`` or ``admin@*`` -> Grant."""
    role, sep, scope = str(text).strip().partition("@")
    if not sep or not role or not scope:
        raise ClaimError(f"grant {text!r}: expected role@org or role@org/project (e.g. approver@acme)")
    org, _, project = scope.partition("/")
    if org == ALL_ORGS and project:
        raise ClaimError(f"grant {text!r}: a project cannot be narrowed across every organisation")
    try:
        return Grant(role=role.strip().lower(), org=org.strip().lower(), project=project.strip().lower() or None)
    except ValueError as exc:
        raise ClaimError(f"grant {text!r}: {exc}") from None


def grants_from_claims(claims: Mapping[str, Any], claim: str = DEFAULT_ROLES_CLAIM) -> tuple[Grant, ...]:
    """The grants a token carries in `claim` (a list, or one space/comma separated string); none if absent."""
    raw = claims.get(claim)
    if raw is None:
        return ()
    if isinstance(raw, str):
        return tuple(parse_grant(item) for item in raw.replace(",", " ").split())
    if not isinstance(raw, (list, tuple)):
        raise ClaimError(f"claim {claim!r}: expected a list of role@org strings, got {type(raw).__name__}")
    return tuple(parse_grant(item) for item in raw)


def identity_from_claims(claims: Mapping[str, Any]) -> str:
    """The user's normalised name: email, else preferred_username, else sub (lower-case, trimmed)."""
    for key in IDENTITY_CLAIMS:
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower()
    raise ClaimError(f"the token has none of the identity claims {', '.join(IDENTITY_CLAIMS)}")


def principal_from_claims(
    claims: Mapping[str, Any],
    *,
    mode: str = "signed_in",
    stored: Iterable[Grant] = (),
    claim: str = DEFAULT_ROLES_CLAIM,
) -> Principal:
    """A Principal from verified claims plus any grants held in the local role table (`stored`)."""
    name = identity_from_claims(claims)
    grants = tuple(dict.fromkeys((*grants_from_claims(claims, claim), *stored)))
    return Principal(name=name, mode=mode, grants=grants)


__all__ = [
    "DEFAULT_ROLES_CLAIM",
    "ClaimError",
    "grants_from_claims",
    "identity_from_claims",
    "parse_grant",
    "principal_from_claims",
]
