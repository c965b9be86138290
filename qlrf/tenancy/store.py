"""The local role table: users and their grants, in the task store's database (SQLite or Postgres).

Why here and not only in token claims: the embedded default has no identity provider, the HTTP API
signs callers in with bearer tokens that carry no claims, and an administrator must be able to take a
role away *now* (the next action of that user is judged by the table, not by a token minted an hour
ago). The CLI, the API, the dashboard and the inbound events all read grants from this one table
(:meth:`GrantStore.grants_for`), plus whatever a verified token's claims add.

Names are identities normalised like the task store's (:func:`normalise_identity`: stripped,
NFKC, casefolded), so ``Alice@Example.com`` and ``alice@example.com`` are one user.

Every change needs an admin (:func:`qlrf.tenancy.enforce.require` with the ``admin`` action in the
grant's organisation; ``org="*"`` needs a platform admin) and writes an audit record in the same
transaction as the change: ``user_added``, ``grant_added``, ``grant_revoked`` (subject
``user:<name>``). A refused change writes ``access_denied`` and changes nothing.

Bootstrapping the first admin (:meth:`GrantStore.bootstrap_admin`): allowed only while the table holds
no admin grant at all, and only for a caller the entry point trusts to be the machine's operator (the
CLI's trusted local mode, ``QLRF_CLI_TRUSTED_LOCAL_USER``). It is checked inside the write
transaction, so two racing bootstraps give one admin and one refusal; it is audited as
``admin_bootstrapped``.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Column, DateTime, Engine, String, Table, and_, delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from qlrf.db import db_now, engine_for, metadata, read_tx, utc, write_tx
from qlrf.remediation.approvals import normalise_identity
from qlrf.remediation.audit import AuditLog, AuditRecord
from qlrf.tenancy.roles import ALL_ORGS, ROLES, AccessDenied, Grant, Principal

RESERVED_PREFIXES = ("policy:", "system:", "ai:")  # names the system acts under: never a user

users = Table(
    "rf_users",
    metadata,
    Column("name", String(200), primary_key=True),  # normalised identity
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(200), nullable=False),
)

grants = Table(
    "rf_grants",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("role", String(16), primary_key=True),
    Column("org", String(200), primary_key=True),
    Column("project", String(200), primary_key=True),  # "" = every project of the organisation
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("granted_by", String(200), nullable=False),
)


class GrantError(ValueError):
    """A user or grant change that cannot be made (unknown user, grant already held or not held...)."""


@dataclass(frozen=True)
class UserGrants:
    name: str
    created_at: datetime
    created_by: str
    grants: tuple[Grant, ...] = field(default_factory=tuple)


def user_name(value: str | None) -> str:
    """A user name as stored: normalised, non-empty, not one of the system's own actor names."""
    if not isinstance(value, str) or not normalise_identity(value):
        raise GrantError("a user name must be given")
    name = normalise_identity(value)
    if name.startswith(RESERVED_PREFIXES) or name == "*":
        raise GrantError(f"user {name!r}: the name is reserved for the system ({', '.join(RESERVED_PREFIXES)})")
    return name


def make_grant(role: str, org: str, project: str | None = None) -> Grant:
    """A Grant from typed parts, normalised like token claims (lower-case)."""
    role = (role or "").strip().lower()
    if role not in ROLES:
        raise GrantError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}")
    org = (org or "").strip().lower()
    if not org:
        raise GrantError("a grant needs an organisation (or '*' for every organisation)")
    project = (project or "").strip().lower() or None
    if org == ALL_ORGS and project:
        raise GrantError("a project cannot be narrowed across every organisation")
    return Grant(role=role, org=org, project=project)


def _label(g: Grant) -> str:
    return f"{g.role}@{g.org}" + (f"/{g.project}" if g.project else "")


class GrantStore:
    """Users and grants in the database `engine_for(url)` picks; changes audited in `audit`."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None, audit: AuditLog | None = None):
        self.engine = engine or engine_for(url)
        metadata.create_all(self.engine, tables=[users, grants], checkfirst=True)
        self.audit = audit if audit is not None else AuditLog(engine=self.engine)

    # --- reading -----------------------------------------------------------------------------------

    def grants_for(self, name: str | None) -> tuple[Grant, ...]:
        """The grants `name` holds now (none for an unknown user): read per action, so a revoke counts
        from the very next one."""
        if not isinstance(name, str) or not normalise_identity(name):
            return ()
        with read_tx(self.engine) as conn:
            rows = conn.execute(select(grants).where(grants.c.name == normalise_identity(name))
                                .order_by(grants.c.org, grants.c.project, grants.c.role)).all()
        return tuple(Grant(role=r.role, org=r.org, project=r.project or None) for r in rows)

    def principal(self, name: str | None, mode: str, extra: tuple[Grant, ...] = ()) -> Principal:
        """The Principal `name` is in `mode`: the table's grants plus `extra` (e.g. from token claims)."""
        if name is None:
            return Principal(name=None, mode="none")
        normal = normalise_identity(name)
        return Principal(name=normal, mode=mode, grants=tuple(dict.fromkeys((*extra, *self.grants_for(normal)))))

    def list(self) -> builtins.list[UserGrants]:
        """Every user, by name, with their grants (users that exist only through a grant included)."""
        with read_tx(self.engine) as conn:
            urows = {r.name: r for r in conn.execute(select(users)).all()}
            grows = conn.execute(select(grants).order_by(grants.c.name, grants.c.org, grants.c.project, grants.c.role)).all()
        held: dict[str, list[Grant]] = {}
        for r in grows:
            held.setdefault(r.name, []).append(Grant(role=r.role, org=r.org, project=r.project or None))
        out = []
        for name in sorted(set(urows) | set(held)):
            u = urows.get(name)
            out.append(UserGrants(name, utc(u.created_at) if u else None, u.created_by if u else "-",
                                  tuple(held.get(name, ()))))
        return out

    def has_admin(self) -> bool:
        with read_tx(self.engine) as conn:
            return self._has_admin(conn)

    @staticmethod
    def _has_admin(conn: Connection) -> bool:
        return conn.execute(select(grants.c.name).where(grants.c.role == "admin").limit(1)).first() is not None

    # --- changing (admins only) --------------------------------------------------------------------

    def _require_admin(self, by: Principal, org: str, subject: str) -> None:
        from qlrf.tenancy.enforce import require

        require(by, "admin", org, audit=self.audit, subject=subject)

    def _require_some_admin(self, by: Principal, subject: str) -> None:
        """Adding a user with no grant yet: an admin of at least one organisation."""
        from qlrf.tenancy.enforce import require

        admin_orgs = sorted(g.org for g in by.grants if g.role == "admin")
        require(by, "admin", admin_orgs[0] if admin_orgs else ALL_ORGS, audit=self.audit, subject=subject)

    def _append(self, conn: Connection, kind: str, actor: str, subject: str, data: dict) -> AuditRecord:
        return self.audit.append_in(conn, kind, actor, subject, data)

    def _commit(self, records: builtins.list[AuditRecord]) -> None:
        for record in records:
            self.audit.publish(record)

    def _ensure_user(self, conn: Connection, name: str, by: str, now: datetime, records: builtins.list[AuditRecord]) -> bool:
        if conn.execute(select(users.c.name).where(users.c.name == name)).first() is not None:
            return False
        conn.execute(insert(users).values(name=name, created_at=now, created_by=by))
        records.append(self._append(conn, "user_added", by, f"user:{name}", {"user": name}))
        return True

    def add_user(self, name: str, *, by: Principal) -> bool:
        """Register `name` (no grant yet); False when it was already there (nothing written)."""
        name = user_name(name)
        self._require_some_admin(by, f"user:{name}")
        records: builtins.list[AuditRecord] = []
        with write_tx(self.engine) as conn:
            added = self._ensure_user(conn, name, by.name, db_now(conn), records)
        self._commit(records)
        return added

    def grant(self, name: str, grant: Grant, *, by: Principal) -> None:
        """Give `name` the grant (the user is registered if new); GrantError if already held."""
        name = user_name(name)
        self._require_admin(by, grant.org, f"user:{name}")
        records: builtins.list[AuditRecord] = []
        try:
            with write_tx(self.engine) as conn:
                now = db_now(conn)
                self._ensure_user(conn, name, by.name, now, records)
                conn.execute(insert(grants).values(name=name, role=grant.role, org=grant.org, project=grant.project or "",
                                                   granted_at=now, granted_by=by.name))
                records.append(self._append(conn, "grant_added", by.name, f"user:{name}",
                                            {"user": name, "grant": _label(grant), "role": grant.role, "org": grant.org,
                                             "project": grant.project}))
        except IntegrityError:
            raise GrantError(f"{name} already holds {_label(grant)}") from None
        self._commit(records)

    def revoke(self, name: str, grant: Grant, *, by: Principal) -> None:
        """Take the grant away; GrantError (nothing written) if `name` does not hold it."""
        name = user_name(name)
        self._require_admin(by, grant.org, f"user:{name}")
        records: builtins.list[AuditRecord] = []
        with write_tx(self.engine) as conn:
            gone = conn.execute(delete(grants).where(and_(
                grants.c.name == name, grants.c.role == grant.role, grants.c.org == grant.org,
                grants.c.project == (grant.project or ""))))
            if gone.rowcount != 1:
                raise GrantError(f"{name} does not hold {_label(grant)}: nothing revoked "
                                 f"(holds: {', '.join(_label(g) for g in self._held(conn, name)) or 'nothing'})")
            records.append(self._append(conn, "grant_revoked", by.name, f"user:{name}",
                                        {"user": name, "grant": _label(grant), "role": grant.role, "org": grant.org,
                                         "project": grant.project}))
        self._commit(records)

    @staticmethod
    def _held(conn: Connection, name: str) -> builtins.list[Grant]:
        rows = conn.execute(select(grants).where(grants.c.name == name)).all()
        return [Grant(role=r.role, org=r.org, project=r.project or None) for r in rows]

    def bootstrap_admin(self, name: str, *, operator: str) -> Grant:
        """The first admin: ``admin@*`` for `name`, only while no admin exists (checked in the write
        transaction). `operator` is the trusted local operator the entry point vouches for."""
        name = user_name(name)
        grant = Grant(role="admin", org=ALL_ORGS)
        records: builtins.list[AuditRecord] = []
        with write_tx(self.engine) as conn:
            # The audit head's lock serialises writers on Postgres too (SQLite: BEGIN IMMEDIATE already
            # does), so two bootstraps racing cannot both see an empty table.
            self.audit.lock(conn)
            if self._has_admin(conn):
                denied = AccessDenied(f"{operator} may not bootstrap an admin: the role table already has one "
                                      "(ask an admin to run `qlrf users grant`)")
                records.append(self._append(conn, "access_denied", operator, f"user:{name}",
                                            {"who": operator, "action": "admin", "org": ALL_ORGS, "project": None,
                                             "why": str(denied)}))
            else:
                denied = None
                now = db_now(conn)
                self._ensure_user(conn, name, operator, now, records)
                conn.execute(insert(grants).values(name=name, role="admin", org=ALL_ORGS, project="", granted_at=now,
                                                   granted_by=operator))
                records.append(self._append(conn, "admin_bootstrapped", operator, f"user:{name}",
                                            {"user": name, "grant": _label(grant), "operator": operator}))
        self._commit(records)
        if denied is not None:
            raise denied
        return grant


def grant_store(audit: AuditLog | None = None) -> GrantStore:
    """The role table in the task store's database, audited in its audit log (default: the configured one)."""
    audit = audit if audit is not None else AuditLog()
    return GrantStore(engine=audit.engine, audit=audit)


__all__ = ["GrantError", "GrantStore", "UserGrants", "grant_store", "grants", "make_grant", "user_name", "users"]
