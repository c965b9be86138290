"""Row-level security on PostgreSQL (issue 14 item 4): every per-tenant table keyed on ``org``.

What :func:`setup_rls` (``qlrf db setup-rls``) makes, run once as a superuser (or a role with
CREATEROLE that owns the tables), idempotent:

* an **owner role** (``NOLOGIN``: nobody signs in as it) that owns every ``rf_*`` table, sequence
  and view. Why: PostgreSQL never applies RLS to superusers and, unless forced, not to a table's
  owner; the application must be neither.
* an **application role** (``LOGIN``, ``NOSUPERUSER``, ``NOBYPASSRLS``, not the owner) with
  SELECT/INSERT/UPDATE/DELETE on the tables and USAGE on the sequences, nothing else: it cannot
  alter a table, drop a policy or turn RLS off. ``QLRF_POSTGRES_URL`` names this role.
* on every per-tenant table (:data:`TENANT_TABLES`): ``ENABLE`` and ``FORCE ROW LEVEL SECURITY``
  and one policy ``rf_tenant`` with the same ``USING`` and ``WITH CHECK``::

      org = ANY (string_to_array(current_setting('app.orgs', true), ','))
      OR current_setting('app.orgs', true) = '*'

  ``app.orgs`` is set per transaction by :func:`qlrf.db.write_tx` / :func:`qlrf.db.read_tx` from
  :mod:`qlrf.tenancy.scope` (``SET LOCAL`` semantics). Unset (no scope) it is NULL or '' and the
  predicate is false: a session that names no tenant sees nothing and can write nothing. ``*`` is the
  explicit system scope of jobs and sensors acting for every organisation (audited as such).
* views over the tables with ``security_invoker = true``: a view runs with its owner's rights by
  default, and the owner is exempt from (unforced) RLS, so a plain view would show every tenant.
  :data:`VIEWS` ships one (``rf_open_tasks``); every other ``rf_*`` view found is switched too.

The policy trusts ``app.orgs`` as the application sets it: the boundary is that the application
role cannot change the policies, and every query runs with the caller's tenants; SQL written by a
tenant never reaches the database (no value is pasted into SQL anywhere in ``qlrf``).

SQLite (the embedded default, one local user) has no row-level security: there the ``org`` column
and the per-org audit chains exist, the scope picks the org of new rows, and nothing is hidden.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import Connection, make_url

from qlrf.db import database_url, engine_for, metadata

TENANT_TABLES: tuple[str, ...] = (
    "rf_tasks",
    "rf_audit_log",
    "rf_audit_head",
    "rf_alert_ledger",
    "rf_event_outbox",
    "rf_execution_journal",
)
POLICY = "rf_tenant"
PREDICATE = (
    "org = ANY (string_to_array(current_setting('app.orgs', true), ',')) "
    "OR current_setting('app.orgs', true) = '*'"
)
VIEWS: dict[str, str] = {
    # The approval work queue for BI tools and ad-hoc SQL: only the caller's tenants (security_invoker).
    "rf_open_tasks": (
        "SELECT id, org, state, kind, environment, platform, site, plan_id, risk_level, requested_by, "
        "created_at, expires_at FROM rf_tasks WHERE state IN ('pending_approval', 'approved', 'running', 'paused')"
    ),
}
DEFAULT_OWNER = "qlrf_owner"
DEFAULT_APP = "qlrf_app"
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class RlsError(RuntimeError):
    """Row-level security cannot be set up or checked here (SQLite, bad role name, no privilege)."""


def _role(name: str) -> str:
    """A role name is code, not data (it cannot be a bind parameter in DDL): refuse anything odd."""
    if not isinstance(name, str) or not _ROLE.match(name):
        raise RlsError(f"not a role name: {name!r} (lower case letters, digits and '_', at most 63)")
    return name


def _admin_engine(url: str | None) -> Engine:
    resolved = database_url(url)
    if not resolved.startswith("postgresql"):
        raise RlsError("row-level security needs PostgreSQL (the embedded SQLite default has none): "
                       "pass --url postgresql://... or set QLRF_POSTGRES_URL")
    _tables()  # every table module imported, so its table is on the metadata
    metadata.create_all(engine_for(resolved), checkfirst=True)  # they exist (created by this admin, then handed
    return create_engine(resolved, isolation_level="AUTOCOMMIT")  # to the owner role), even on a cached engine


def _tables() -> list[str]:
    import qlrf.events.outbox  # noqa: F401 - their tables join qlrf.db.metadata on import
    import qlrf.remediation.journal  # noqa: F401
    import qlrf.tenancy.store  # noqa: F401 - the role table (rf_users, rf_grants): not per tenant, granted like the rest

    return sorted(t for t in metadata.tables if t.startswith("rf_"))


def _role_exists(conn: Connection, name: str) -> bool:
    return conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": name}).first() is not None


def setup_rls(url: str | None = None, *, owner_role: str = DEFAULT_OWNER, app_role: str = DEFAULT_APP,
              app_password: str | None = None) -> list[str]:
    """Create the roles, hand the tables to the owner, force RLS with the tenant policy, grant the
    application role, make the views security_invoker. Returns what it did (never the password)."""
    owner, app = _role(owner_role), _role(app_role)
    if owner == app:
        raise RlsError("the application role must not be the table owner: give two different names")
    tables = _tables()  # before the admin engine creates the tables: every rf_ table is in metadata
    engine = _admin_engine(url)
    done: list[str] = []
    try:
        with engine.connect() as conn, conn.begin():
            if not _role_exists(conn, owner):
                conn.exec_driver_sql(f"CREATE ROLE {owner} NOLOGIN")
                done.append(f"created owner role {owner} (NOLOGIN)")
            if not _role_exists(conn, app):
                conn.exec_driver_sql(f"CREATE ROLE {app} LOGIN")
                done.append(f"created application role {app} (LOGIN)")
            conn.exec_driver_sql(f"ALTER ROLE {app} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE")
            if app_password is not None:
                conn.execute(text(f"ALTER ROLE {app} PASSWORD :p"), {"p": app_password})
                done.append(f"set the password of {app}")
            present = {r[0] for r in conn.execute(text(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).all()}
            for table in sorted(set(tables) | {t for t in present if t.startswith("rf_")}):
                if table not in present:
                    continue
                conn.exec_driver_sql(f"ALTER TABLE {table} OWNER TO {owner}")
                conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {app}")
            for table in TENANT_TABLES:
                if table not in present:
                    continue
                conn.exec_driver_sql(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
                conn.exec_driver_sql(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
                conn.exec_driver_sql(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
                conn.exec_driver_sql(f"CREATE POLICY {POLICY} ON {table} USING ({PREDICATE}) WITH CHECK ({PREDICATE})")
                done.append(f"{table}: RLS enabled and forced, policy {POLICY}")
            for (seq,) in conn.execute(text(
                    "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() "
                    "AND sequencename LIKE 'rf\\_%'")).all():
                conn.exec_driver_sql(f"ALTER SEQUENCE {seq} OWNER TO {owner}")
                conn.exec_driver_sql(f"GRANT USAGE, SELECT ON SEQUENCE {seq} TO {app}")
            conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA {conn.exec_driver_sql('SELECT current_schema()').scalar()} "
                                 f"TO {app}")
            for view, body in VIEWS.items():
                conn.exec_driver_sql(f"CREATE OR REPLACE VIEW {view} WITH (security_invoker = true) AS {body}")
            for (view,) in conn.execute(text(
                    "SELECT viewname FROM pg_views WHERE schemaname = current_schema() AND viewname LIKE 'rf\\_%'")).all():
                conn.exec_driver_sql(f"ALTER VIEW {view} SET (security_invoker = true)")
                conn.exec_driver_sql(f"ALTER VIEW {view} OWNER TO {owner}")
                conn.exec_driver_sql(f"GRANT SELECT ON {view} TO {app}")
                done.append(f"view {view}: security_invoker")
            conn.exec_driver_sql(
                "SELECT setval('rf_audit_seq', (SELECT max(seq) FROM rf_audit_log)) "
                "WHERE (SELECT max(seq) FROM rf_audit_log) > (SELECT last_value FROM rf_audit_seq)")
    finally:
        engine.dispose()
    return done


@dataclass(frozen=True)
class TableStatus:
    name: str
    exists: bool
    rls: bool = False
    forced: bool = False
    policies: tuple[str, ...] = ()
    owner: str = ""

    @property
    def ok(self) -> bool:
        return self.exists and self.rls and self.forced and POLICY in self.policies


@dataclass(frozen=True)
class RlsStatus:
    """What `rls_status` found, from the connecting role's point of view."""

    role: str
    superuser: bool
    bypassrls: bool
    tables: list[TableStatus] = field(default_factory=list)
    views: dict[str, bool] = field(default_factory=dict)  # view -> security_invoker

    @property
    def problems(self) -> list[str]:
        out = [f"{t.name}: " + ("missing" if not t.exists else "RLS not enabled" if not t.rls else
                                "RLS not forced" if not t.forced else f"no {POLICY} policy")
               for t in self.tables if not t.ok]
        out += [f"view {v}: not security_invoker (shows every tenant)" for v, inv in self.views.items() if not inv]
        if self.superuser or self.bypassrls:
            out.append(f"role {self.role} bypasses row-level security (superuser or BYPASSRLS)")
        owned = sorted(t.name for t in self.tables if t.exists and t.owner == self.role)
        if owned:
            out.append(f"role {self.role} owns {', '.join(owned)}: connect as the application role")
        return out


def rls_status(url: str | None = None) -> RlsStatus:
    """Per tenant table: RLS on, forced, policy present, owner; views' security_invoker; the role."""
    resolved = database_url(url)
    if not resolved.startswith("postgresql"):
        raise RlsError("row-level security needs PostgreSQL; the embedded SQLite default has none")
    engine = create_engine(resolved)
    try:
        with engine.connect() as conn:
            role, superuser, bypass = conn.execute(text(
                "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")).one()
            rows = {r.relname: r for r in conn.execute(text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) AS owner "
                "FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r' "
                "AND c.relname = ANY(:names)"), {"names": list(TENANT_TABLES)}).all()}
            policies: dict[str, list[str]] = {}
            for table, policy in conn.execute(text(
                    "SELECT tablename, policyname FROM pg_policies WHERE schemaname = current_schema()")).all():
                policies.setdefault(table, []).append(policy)
            views = {r.relname: "security_invoker=true" in (r.reloptions or []) or
                     "security_invoker=on" in (r.reloptions or []) for r in conn.execute(text(
                         "SELECT relname, reloptions FROM pg_class WHERE relkind = 'v' "
                         "AND relnamespace = current_schema()::regnamespace AND relname LIKE 'rf\\_%'")).all()}
    finally:
        engine.dispose()
    tables = [
        TableStatus(name, True, bool(rows[name].relrowsecurity), bool(rows[name].relforcerowsecurity),
                    tuple(sorted(policies.get(name, []))), rows[name].owner)
        if name in rows else TableStatus(name, False)
        for name in TENANT_TABLES
    ]
    return RlsStatus(role, bool(superuser), bool(bypass), tables, views)


def app_url(admin_url: str, app_role: str, password: str | None = None) -> str:
    """`admin_url` with the application role as its user (what QLRF_POSTGRES_URL should be)."""
    parsed = make_url(database_url(admin_url)).set(username=_role(app_role), password=password)
    return parsed.render_as_string(hide_password=False)


__all__ = [
    "DEFAULT_APP",
    "DEFAULT_OWNER",
    "POLICY",
    "PREDICATE",
    "TENANT_TABLES",
    "VIEWS",
    "RlsError",
    "RlsStatus",
    "TableStatus",
    "app_url",
    "rls_status",
    "setup_rls",
]
