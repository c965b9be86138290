"""Who is using the dashboard, and which pages and actions they see: the pure part (no Streamlit).

Why separate from the page code: the rules (claims -> Principal, the local single-user mode, which
page needs which action, why a card's buttons are refused) must be unit-testable without a browser,
and must agree with the CLI and API, so they are built only from :mod:`qlrf.tenancy.roles` and
:mod:`qlrf.tenancy.claims`. ``dashboards/components/identity.py`` feeds this module ``st.user`` and
``st.secrets``; the environment is read only when :func:`resolve` is called without a mapping
(never at import).

Three ways a dashboard session is established:

* **signed in** (``mode="signed_in"``): ``st.login`` with an OIDC provider from ``secrets.toml``
  ``[auth]``; the name is the token's email (else preferred_username, else sub), the grants are the
  ``qlrf_roles`` claim plus whatever the local role table (``stored``) holds for that name.
* **trusted local** (``mode="trusted_local"``): no provider is configured and
  ``QLRF_DASHBOARD_LOCAL_USER`` names the one person using this machine; grants come from
  ``QLRF_DASHBOARD_LOCAL_ROLES`` (default ``approver@*``). Local mode proves nothing about who sits
  at the keyboard, so it never decides production plans, whatever roles it is given.
* **anonymous** (``mode="none"``): nobody is identified. Without a provider (the embedded
  ``make serve`` default) the fleet pages, Approvals and Audit are readable and nothing can be
  decided, proposed or administered. With a provider configured, an anonymous visitor sees only
  the sign-in page: a deployment that turned sign-in on does not show its data to strangers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from qlrf.envparse import environ, text
from qlrf.remediation.approvals import normalise_identity
from qlrf.remediation.reviewer import ENV_LOCAL_USER, PRODUCTION
from qlrf.tenancy.claims import ClaimError, parse_grant, principal_from_claims
from qlrf.tenancy.roles import ALL_ORGS, AccessDenied, Grant, Principal, authorise

ENV_LOCAL_ROLES = "QLRF_DASHBOARD_LOCAL_ROLES"
DEFAULT_LOCAL_ROLES = "approver@*"
SIGNED_IN, LOCAL, ANONYMOUS = "signed_in", "trusted_local", "none"

StoredGrants = Callable[[str], Iterable[Grant]]

# page (the file name under dashboards/app_pages) -> the action a principal needs in at least one org.
# Approvals is readable by viewers (the cards); its buttons need `approve` in the task's organisation.
# Copilot is readable by viewers (read-only questions); proposals need `propose`.
PAGES: dict[str, str] = {
    "overview": "read",
    "drift": "read",
    "compliance": "read",
    "dr": "read",
    "sites": "read",
    "images": "read",
    "approvals": "read",
    "audit": "read",
    "copilot": "read",
    "settings": "admin",
}
# Pages an anonymous visitor may read when no sign-in provider is configured (the embedded default).
ANONYMOUS_PAGES = frozenset(PAGES) - {"settings"}


@dataclass(frozen=True)
class Session:
    """A principal plus how the dashboard got it.

    `problem` says why a sign-in or the local mode gave no usable identity, or (signed in) why the
    local role table's grants are missing; the sidebar shows it as an error."""

    principal: Principal
    provider_configured: bool
    problem: str | None = None

    @property
    def mode(self) -> str:
        return self.principal.mode

    @property
    def name(self) -> str | None:
        return self.principal.name


def local_grants(env: Mapping[str, str]) -> tuple[Grant, ...]:
    """The grants of the trusted local user: ``QLRF_DASHBOARD_LOCAL_ROLES`` (role@org list) or approver@*."""
    raw = text(env, ENV_LOCAL_ROLES) or DEFAULT_LOCAL_ROLES
    grants = []
    for item in raw.replace(",", " ").split():
        try:
            grants.append(parse_grant(item))
        except ClaimError as exc:
            raise ClaimError(f"{ENV_LOCAL_ROLES}: {exc}") from None
    return tuple(dict.fromkeys(grants))


def resolve(
    user: Mapping[str, Any] | None,
    *,
    provider_configured: bool,
    env: Mapping[str, str] | None = None,
    stored: StoredGrants | None = None,
) -> Session:
    """The dashboard session from ``st.user`` (as a dict), whether ``[auth]`` is configured, and the env.

    A signed-in user whose claims cannot name them is anonymous with the reason in ``problem``
    (never a guessed identity). The local mode applies only when no provider is configured: with
    one, sign-in is the only way in, so a stale QLRF_DASHBOARD_LOCAL_USER cannot bypass it."""
    env = environ(env)
    if user and user.get("is_logged_in"):
        try:
            name = principal_from_claims(user).name or ""
        except ClaimError as exc:
            return Session(Principal(None, ANONYMOUS), provider_configured, f"sign-in refused: {exc}")
        extra: tuple[Grant, ...] = ()
        problem = None
        if stored is not None:
            try:
                extra = tuple(stored(name))
            except Exception as exc:  # noqa: BLE001 - an unreachable role table must not end the session
                # Fail closed: the token's own grants only, and the page says the table's grants are missing.
                problem = f"the local role table could not be read ({type(exc).__name__}): only the token's roles apply"
        return Session(principal_from_claims(user, mode=SIGNED_IN, stored=extra), provider_configured, problem)
    if provider_configured:
        return Session(Principal(None, ANONYMOUS), True)
    local = text(env, ENV_LOCAL_USER)
    if local and normalise_identity(local):
        try:
            return Session(Principal(normalise_identity(local), LOCAL, local_grants(env)), False)
        except ClaimError as exc:  # nothing is guessed: a typo in the roles leaves nobody identified
            return Session(Principal(None, ANONYMOUS), False, f"local mode refused: {exc}")
    return Session(Principal(None, ANONYMOUS), False)


def visible_pages(session: Session) -> list[str]:
    """The pages (in PAGES order) this session may open; hidden pages are not in the navigation at all."""
    principal = session.principal
    if principal.name is None:
        return [] if session.provider_configured else [p for p in PAGES if p in ANONYMOUS_PAGES]
    return [p for p, action in PAGES.items() if _any_grant(principal, action)]


def _any_grant(principal: Principal, action: str) -> bool:
    """True when some grant (including an ALL_ORGS one) reaches `action` somewhere."""
    return bool(principal.orgs(action, known=(ALL_ORGS,)))


def may_anywhere(session: Session, action: str) -> bool:
    """Whether the principal may do `action` in at least one organisation (shows a control at all)."""
    return session.principal.name is not None and _any_grant(session.principal, action)


def task_org(task: object) -> str:
    """The organisation a task belongs to: the one rule of :func:`qlrf.tenancy.enforce.task_org` (its
    stored org, else its plan's ``metadata.org``, else ``unassigned``, which only an approver of
    ``unassigned`` or of every organisation may decide). Never anything the page was sent."""
    from qlrf.tenancy.enforce import task_org as stored_org

    return stored_org(task)


def task_project(task: object) -> str | None:
    """The project a task belongs to, lower-cased; None when it has none (then only org-wide grants count)."""
    from qlrf.tenancy.enforce import task_project as stored_project

    return stored_project(task)


def decision_refusal(session: Session, org: str, environment: str, requested_by: str,
                     project: str | None = None) -> str | None:
    """Why this session may not approve/reject/modify a task; None when it may.

    Checked in the order a person can act on: nobody identified, no approver role in the task's
    organisation, local mode on production, the requester deciding their own plan."""
    principal = session.principal
    if principal.name is None:
        if session.provider_configured:
            return "approve/reject disabled: sign in as an approver"
        return f"approve/reject disabled: set {ENV_LOCAL_USER} (trusted local mode) or configure sign-in"
    try:
        authorise(principal, "approve", org, project)
    except AccessDenied as exc:
        return str(exc)
    if principal.mode == LOCAL and environment.lower() in PRODUCTION:
        return "production plans cannot be decided in local single-user mode: a signed-in approver is required"
    if normalise_identity(requested_by) == normalise_identity(principal.name):
        return f"you requested this plan ({principal.name}): another person must decide it"
    return None


def grants_text(principal: Principal) -> str:
    """The grants as the claim spells them (``approver@acme, viewer@beta/payments``), or 'no roles'."""
    if not principal.grants:
        return "no roles"
    return ", ".join(f"{g.role}@{g.org}{'/' + g.project if g.project else ''}" for g in principal.grants)


def label(session: Session) -> str:
    """One line saying who this is and in which mode, for the sidebar and the Approvals page."""
    p = session.principal
    if p.mode == SIGNED_IN:
        note = f". Note: {session.problem}" if session.problem else ""
        return f"Signed in as {p.name} ({grants_text(p)}){note}"
    if p.mode == LOCAL:
        return (f"Local single-user mode: decisions are recorded as {p.name} ({ENV_LOCAL_USER}; roles "
                f"{grants_text(p)}). Production plans need a signed-in approver.")
    if session.problem:
        return f"{'Not signed in' if session.provider_configured else 'No identity'}: {session.problem}"
    if session.provider_configured:
        return "Not signed in: sign in to see the fleet."
    return (f"No approver identity (anonymous, read-only): sign-in is not configured and {ENV_LOCAL_USER} is not set, "
            "so approve, reject, modify, proposals and settings are disabled here.")


SECRET_KEYS = ("client_secret", "cookie_secret")


def sign_in_settings(auth: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The ``[auth]`` section as (provider, key, value) rows for the Settings page, secrets never shown.

    Why here: an admin checking why sign-in fails needs the redirect URI and the metadata URL, but
    the client and cookie secrets must not reach a page (they would reach screenshots and logs)."""
    if not auth:
        return [{"provider": "-", "key": "[auth]", "value": "not configured: local single-user or anonymous mode"}]
    sections = {name: value for name, value in auth.items() if hasattr(value, "keys")}
    top = {k: v for k, v in auth.items() if k not in sections}
    rows = []
    for provider, values in [("(default)", top), *sections.items()]:
        for key in sorted(values):
            value = values[key]
            shown = "set (value hidden)" if key in SECRET_KEYS or "secret" in key.lower() else str(value)
            rows.append({"provider": provider, "key": key, "value": shown})
    return rows


__all__ = [
    "ANONYMOUS",
    "DEFAULT_LOCAL_ROLES",
    "ENV_LOCAL_ROLES",
    "ENV_LOCAL_USER",
    "LOCAL",
    "PAGES",
    "SIGNED_IN",
    "Session",
    "decision_refusal",
    "grants_text",
    "label",
    "local_grants",
    "may_anywhere",
    "resolve",
    "sign_in_settings",
    "task_org",
    "task_project",
    "visible_pages",
]
