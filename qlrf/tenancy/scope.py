"""Whose rows a database session may touch: the tenant scope, set by the caller, read per transaction.

Why a context variable: the organisations a caller may act for are known where the caller is
identified (the dashboard's signed-in user, the CLI's principal, a sensor acting for everyone), but
the SQL runs deep inside the task store, the audit log, the outbox and the ledger. Threading an
``orgs`` argument through every one of them would change every signature; instead the caller opens a
scope and :func:`qlrf.db.read_tx` / :func:`qlrf.db.write_tx` (every transaction, on PostgreSQL) copy
it into the transaction with ``set_config('app.orgs', ..., true)`` (``SET LOCAL``: it ends with the
transaction, so a pooled connection never carries one caller's tenants into the next).

* ``tenant_scope(["acme"])``: the session sees and writes rows of ``acme`` only (row-level security,
  :mod:`qlrf.tenancy.rls`).
* ``system_scope("expiry_sensor")``: jobs and sensors that act for every organisation say so
  explicitly; ``app.orgs`` is ``*`` and the audit records written inside carry
  ``"tenant_scope": "system:expiry_sensor"`` so the access is on record.
* No scope: ``app.orgs`` is empty and, with RLS set up, the session sees nothing and cannot write.
  SQLite (the embedded default) has no RLS: the scope only picks which organisation new rows get.

Which organisation a new row gets (:func:`write_org`): the one :func:`writing_org` names (the task
store names the task's organisation around its writes), else the scope's only organisation, else
``unassigned``.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

UNASSIGNED = "unassigned"
ALL = "*"  # the value of app.orgs in a system scope (the RLS policies let it see every row)
_ORG = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,199}$")


class ScopeError(ValueError):
    """An organisation name that cannot be a tenant (empty, a comma, upper case, ...)."""


@dataclass(frozen=True)
class Scope:
    """The organisations of the current caller; ``system`` names the job acting for every org."""

    orgs: frozenset[str]
    system: str | None = None

    @property
    def setting(self) -> str:
        """The value of ``app.orgs`` for this scope (``*`` for a system scope)."""
        return ALL if self.system is not None else ",".join(sorted(self.orgs))


_scope: ContextVar[Scope | None] = ContextVar("qlrf_tenant_scope", default=None)
_writing: ContextVar[str | None] = ContextVar("qlrf_writing_org", default=None)


def check_org(org: str) -> str:
    """`org` if it is a valid organisation id (lower case, no comma or space: it travels in a list)."""
    if not isinstance(org, str) or not _ORG.match(org):
        raise ScopeError(f"not an organisation id: {org!r} (lower case letters, digits, '_', '-', '.')")
    return org


@contextmanager
def _entered(scope: Scope) -> Iterator[Scope]:
    """`scope` in force until the block ends (the previous one, if any, comes back)."""
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


@contextmanager
def tenant_scope(orgs: Iterable[str] | str) -> Iterator[Scope]:
    """Act for `orgs` (one id or several) until the block ends; nested scopes replace, never widen."""
    names = [orgs] if isinstance(orgs, str) else list(orgs)
    with _entered(Scope(frozenset(check_org(o) for o in names))) as scope:
        yield scope


@contextmanager
def system_scope(name: str) -> Iterator[Scope]:
    """Act for every organisation, as the job or sensor `name` (recorded on every audit record)."""
    if not isinstance(name, str) or not name.strip():
        raise ScopeError("a system scope must name the job or sensor acting for every organisation")
    with _entered(Scope(frozenset(), system=name.strip())) as scope:
        yield scope


@contextmanager
def principal_scope(principal: Any, action: str = "read") -> Iterator[Scope]:
    """The scope of a signed-in caller (:class:`qlrf.tenancy.roles.Principal`): the organisations where
    it may do `action`. A grant over every organisation (``*``) opens ``system_scope("user:<name>")``,
    so its reads of every tenant are on record as such; no grant at all = no organisation (sees nothing)."""
    if principal.everywhere(action):
        with system_scope(f"user:{principal.name or 'unknown'}") as scope:
            yield scope
        return
    with _entered(Scope(frozenset(check_org(o) for o in principal.orgs(action)))) as scope:
        yield scope


def acts_for_every_org(name: str) -> Callable[[Callable], Callable]:
    """Run the decorated sensor, op or job body in ``system_scope(name)``.

    Why a decorator: the Dagster code location's sensors and ops act for every organisation (they
    expire, plan and execute every tenant's tasks); under RLS a body that forgot its scope would see
    nothing. The signature is kept (``functools.wraps``), so Dagster still injects resources by name;
    a generator body keeps the scope for its whole iteration."""

    def wrap(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def gen(*args, **kwargs):
                with system_scope(name):
                    yield from fn(*args, **kwargs)
            return gen

        @functools.wraps(fn)
        def call(*args, **kwargs):
            with system_scope(name):
                return fn(*args, **kwargs)
        return call

    return wrap


@contextmanager
def writing_org(org: str | None) -> Iterator[None]:
    """New rows written in this block belong to `org` (None: leave the current choice)."""
    token = _writing.set(check_org(org) if org is not None else _writing.get())
    try:
        yield
    finally:
        _writing.reset(token)


def current_scope() -> Scope | None:
    return _scope.get()


def orgs_setting() -> str:
    """What ``app.orgs`` is set to in the next transaction ('' when no scope: sees nothing under RLS)."""
    scope = _scope.get()
    return scope.setting if scope is not None else ""


def write_org() -> str:
    """The organisation of a row inserted now (see the module docstring)."""
    named = _writing.get()
    if named is not None:
        return named
    scope = _scope.get()
    if scope is not None and scope.system is None and len(scope.orgs) == 1:
        return next(iter(scope.orgs))
    return UNASSIGNED


def system_name() -> str | None:
    """The job acting for every organisation, when the current scope is a system scope."""
    scope = _scope.get()
    return scope.system if scope is not None else None


__all__ = [
    "ALL",
    "acts_for_every_org",
    "principal_scope",
    "UNASSIGNED",
    "Scope",
    "ScopeError",
    "check_org",
    "current_scope",
    "orgs_setting",
    "system_name",
    "system_scope",
    "tenant_scope",
    "write_org",
    "writing_org",
]
