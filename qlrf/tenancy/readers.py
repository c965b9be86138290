"""Which organisations a caller may read: the one answer the dashboard, the CLI's readers and the API use.

Why a separate step from :func:`~qlrf.tenancy.roles.authorise`: readers do not refuse, they filter.
A caller with a read grant on every organisation (``viewer@*`` or higher) reads unrestricted (``None``,
which also shows VMs in unmapped scopes); anyone else reads exactly the organisations their grants
name (possibly none: every reader then returns no rows, never another tenant's).

The CLI's embedded default (no ``QLRF_CLI_TRUSTED_LOCAL_USER``, no ``QLRF_ID_TOKEN``) is the
single-user machine whose warehouse is a local directory the user can open anyway: its readers are
unrestricted, as before tenancy. As soon as an identity is configured, the readers follow its grants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qlrf.envparse import environ, text
from qlrf.tenancy.roles import Principal


def readable_orgs(principal: Principal, known: Iterable[str]) -> tuple[str, ...] | None:
    """None (unrestricted) for a read grant on every organisation; else the sorted organisations it may read."""
    if principal.everywhere("read"):
        return None
    if principal.name is None:
        return ()
    return tuple(sorted(principal.orgs("read", known)))


def dashboard_reader_orgs(principal: Principal, provider_configured: bool,
                          known: Iterable[str]) -> tuple[str, ...] | None:
    """The dashboard's readers: the principal's organisations; unrestricted for the anonymous reader of
    the embedded default (no sign-in provider, no local user: the machine's own read-only view, as the
    CLI's default). With a provider configured an anonymous session sees only the sign-in page."""
    if principal.name is None and not provider_configured:
        return None
    return readable_orgs(principal, known)


def db_scope(principal: Principal, env: Mapping[str, str] | None = None) -> Any:
    """The database tenant scope of an identified caller on PostgreSQL (row-level security): the
    organisations it may read; nothing to open on SQLite or for nobody (who, under RLS, then sees no
    task, audit or alert rows). Used by the dashboard and the HTTP API around their database work."""
    from contextlib import nullcontext

    from qlrf.tenancy.scope import principal_scope

    if not text(environ(env), "QLRF_POSTGRES_URL") or principal.name is None:
        return nullcontext()
    return principal_scope(principal)


def tenant_scope_of(session: Any, env: Mapping[str, str] | None = None) -> Any:
    """:func:`db_scope` of a dashboard session's principal."""
    return db_scope(session.principal, env)


def known_orgs(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The organisations of the tenancy file in force (QLRF_TENANCY_FILE)."""
    from qlrf.tenancy import model

    return tuple(model.current(environ(env)).orgs)  # re-read only when the file changes


def cli_reader_orgs(env: Mapping[str, str] | None = None, store: Any = None) -> tuple[str, ...] | None:
    """The CLI caller's readable organisations (see the module docstring); IdentityRefused (audited)
    when an identity is configured but cannot be established (a bad token)."""
    from qlrf.tenancy.identity import LOCAL_USER_VARIABLE, TOKEN_VARIABLE, cli_principal

    env = environ(env)
    if not (text(env, LOCAL_USER_VARIABLE) or text(env, TOKEN_VARIABLE)):
        return None
    if store is None:
        from qlrf.tenancy.store import grant_store

        store = grant_store()
    return readable_orgs(cli_principal(None, env, store), known_orgs(env))


__all__ = ["cli_reader_orgs", "dashboard_reader_orgs", "db_scope", "known_orgs", "readable_orgs",
           "tenant_scope_of"]
