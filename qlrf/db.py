"""The remediation loop's database: approval tasks, the hash-chained audit log and the alert ledger
(SQLAlchemy 2.x Core).

``engine_for(url)`` picks the database:

* ``url`` given: that one (``postgresql://...`` is read as ``postgresql+psycopg2://...``);
* else ``QLRF_POSTGRES_URL`` when set (the same Postgres that holds the Dagster instance);
* else SQLite at ``$QLRF_HOME/qlrf.db`` (the embedded default).

Engines are cached per URL, so a :class:`~qlrf.remediation.approvals.TaskStore` and an
:class:`~qlrf.remediation.audit.AuditLog` built from the same URL share one engine: a task's state change and
its audit record are then written in one transaction. Every table is declared here on one
``metadata`` and created on first use with one ``create_all``, so no caller has to remember its own.

Write transactions (:func:`write_tx`) are serialised where it matters: on SQLite they start with
``BEGIN IMMEDIATE`` (the database write lock is taken up front, so two appends never read the same
audit head), on PostgreSQL the audit head row is locked with ``SELECT ... FOR UPDATE``
(:mod:`qlrf.remediation.audit`). Read transactions use a plain ``BEGIN`` (SQLite runs in WAL mode, so readers
do not wait for writers).

Tenancy (issue 14): every per-tenant table has an ``org`` column (:func:`org_column`), and on
PostgreSQL every transaction begins with ``set_config('app.orgs', ..., true)`` from the caller's
:mod:`qlrf.tenancy.scope`, which the row-level security policies of :mod:`qlrf.tenancy.rls` read.
:func:`migrate` (``qlrf db migrate``) brings a database made before a column existed up to date.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from qlrf.settings import Settings
from qlrf.tenancy.scope import UNASSIGNED, orgs_setting, system_scope, write_org

GENESIS_HASH = "0" * 64  # prev_hash of the first audit record

metadata = MetaData()


def org_column() -> Column:
    """The tenant of a row (issue 14): every per-tenant table has one, and RLS is keyed on it.

    Filled from the caller's scope when an insert does not name it (:func:`qlrf.tenancy.scope.write_org`);
    rows written before tenancy hold ``unassigned`` (the migration's default)."""
    return Column("org", String(200), nullable=False, default=write_org, server_default=UNASSIGNED)


# The audit log's global record number on PostgreSQL: a tenant's session cannot see other tenants'
# records, so it cannot count them (SQLite, one writer at a time, uses max(seq) + 1).
audit_seq = Sequence("rf_audit_seq", metadata=metadata)

tasks = Table(
    "rf_tasks",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("plan_hash", String(80), nullable=False, unique=True),
    Column("plan_id", String(200), nullable=False),
    Column("plan_yaml", Text, nullable=False),
    Column("state", String(32), nullable=False),
    Column("environment", String(32), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("site", String(200)),
    Column("risk_level", String(16), nullable=False),
    Column("autonomy_mode", String(32), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("approver", String(200)),
    Column("reason", Text),
    Column("decision", Text, nullable=False),  # canonical JSON
    Column("supersedes", String(64)),
    # What the task binds: "patch_plan" (plan_yaml is a PatchPlan) or "ai_task" (plan_yaml is a sealed
    # TaskSpec as JSON, plan_hash its content hash). Added after the table was first created.
    Column("kind", String(32), nullable=False, server_default="patch_plan"),
    org_column(),  # the plan's metadata.org, else unassigned
)
Index("ix_rf_tasks_state", tasks.c.state)
Index("ix_rf_tasks_expires_at", tasks.c.expires_at)

audit_log = Table(
    "rf_audit_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),  # ISO 8601 UTC, exactly as hashed
    Column("kind", String(64), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("data", Text, nullable=False),  # canonical JSON, exactly as hashed
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # HMAC-SHA256 of `hash` under the audit key kept outside the database (qlrf.remediation.anchor):
    # NULL only for records written before the log was keyed.
    Column("mac", String(64)),
    org_column(),
    # The record's place in its organisation's chain (1, 2, ...): prev_hash is the previous record *of
    # the same org*, so each org's chain verifies on its own (under RLS a tenant sees only its own).
    Column("org_seq", BigInteger().with_variant(Integer, "sqlite")),
)
Index("ix_rf_audit_subject", audit_log.c.subject)
Index("ix_rf_audit_kind", audit_log.c.kind)
# Every append reads the previous record of its org, and verify walks chains: by (org, org_seq).
Index("ix_rf_audit_org_seq", audit_log.c.org, audit_log.c.org_seq)

# One row per organisation (id 1 is "unassigned", the only row before tenancy; other orgs' rows have
# id = -(global seq of their first record)): the org's last org_seq and hash, updated in the same
# transaction as every append. A chain whose last record is not its head was cut short.
audit_head = Table(
    "rf_audit_head",
    metadata,
    Column("id", Integer().with_variant(BigInteger(), "postgresql"), primary_key=True, autoincrement=False),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("hash", String(64), nullable=False),
    org_column(),
)
Index("ux_rf_audit_head_org", audit_head.c.org, unique=True)

# When each alert key was last delivered to each channel (qlrf.alerts.ledger): the dedup window
# survives restarts. Rows older than the retention are pruned, hence the index on sent_at.
alert_ledger = Table(
    "rf_alert_ledger",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("key", Text, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    # Added in wave 2 (rows written before have none): what the alert said and how bad it was, so an
    # alert kept with no channel (channel "none") can be listed, and the ledger filtered by severity.
    Column("severity", String(16), nullable=True),
    Column("title", Text, nullable=True),
    org_column(),
)
Index("ix_rf_alert_ledger_sent_at", alert_ledger.c.sent_at)

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def database_url(url: str | None = None) -> str:
    """The URL `engine_for(url)` uses (see the module docstring)."""
    if url is None:
        settings = Settings.from_env()
        if settings.postgres_url:
            url = settings.postgres_url
        else:
            settings.home.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{settings.home / 'qlrf.db'}"
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    elif parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return parsed.render_as_string(hide_password=False)


def engine_for(url: str | None = None) -> Engine:
    """The (cached) engine for `url`, with the tables created. Never logs the URL (it may hold a password)."""
    resolved = database_url(url)
    with _lock:
        engine = _engines.get(resolved)
        if engine is None:
            engine = _create(resolved)
            _engines[resolved] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine (tests, forks)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _create(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_connection.cursor()
            cur.execute("PRAGMA busy_timeout = 30000")
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("qlrf_write") else "BEGIN")

    else:
        engine = create_engine(url, pool_pre_ping=True)
        event.listen(engine, "begin", _set_tenant)
    _create_tables(engine)
    return engine


def _set_tenant(conn: Connection) -> None:
    """Every PostgreSQL transaction starts by naming its tenants (``SET LOCAL app.orgs``)."""
    conn.exec_driver_sql("SELECT set_config('app.orgs', %(orgs)s, true)", {"orgs": orgs_setting()})


def _create_tables(engine: Engine) -> None:
    for attempt in range(3):  # two processes creating the tables at once: one loses, retries, finds them
        try:
            metadata.create_all(engine, checkfirst=True)
            break
        except (IntegrityError, ProgrammingError, OperationalError):
            if attempt == 2:
                raise
    engine.qlrf_added = _add_missing_columns(engine)  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        _align_audit_seq(engine)
    try:
        with system_scope("schema"), write_tx(engine) as conn:
            if conn.execute(select(audit_head.c.id).where(audit_head.c.id == 1)).first() is None:
                conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS_HASH, org=UNASSIGNED))
    except (IntegrityError, ProgrammingError):
        pass  # another process inserted the head first (or the app role may not: setup-rls made it)


ORG_DDL = f"VARCHAR(200) NOT NULL DEFAULT '{UNASSIGNED}'"


# (table, column, DDL type and default) added after the table was first created.
LATER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    (audit_log.name, "mac", "VARCHAR(64)"),
    (tasks.name, "kind", "VARCHAR(32) NOT NULL DEFAULT 'patch_plan'"),
    (alert_ledger.name, "severity", "VARCHAR(16)"),
    (alert_ledger.name, "title", "TEXT"),
    # Tenancy (issue 14): existing rows belong to no organisation yet.
    (tasks.name, "org", ORG_DDL),
    (audit_log.name, "org", ORG_DDL),
    (audit_log.name, "org_seq", "BIGINT"),
    (audit_head.name, "org", ORG_DDL),
    (alert_ledger.name, "org", ORG_DDL),
    ("rf_event_outbox", "org", ORG_DDL),
    ("rf_execution_journal", "org", ORG_DDL),
)


def _add_missing_columns(engine: Engine) -> list[str]:
    """Columns added after a table was first created (``create_all`` never alters a table); returns
    the ``table.column`` names this call added."""
    inspector = sa_inspect(engine)
    present = set(inspector.get_table_names())
    added: list[str] = []
    for table, column, ddl in LATER_COLUMNS:
        if table not in present or column in {c["name"] for c in inspector.get_columns(table)}:
            continue
        try:
            with write_tx(engine) as conn:
                conn.execute(sql_text(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}"))
            added.append(f"{table}.{column}")
        except (OperationalError, ProgrammingError):
            pass  # another process added it first
    if f"{audit_log.name}.org_seq" in added:
        # Before tenancy there was one chain: a record's place in it is its seq.
        with write_tx(engine) as conn:
            conn.execute(sql_text("UPDATE rf_audit_log SET org_seq = seq WHERE org_seq IS NULL"))
            conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ix_rf_audit_org_seq ON rf_audit_log (org, org_seq)")
    if f"{audit_head.name}.org" in added:
        with write_tx(engine) as conn:
            conn.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS ux_rf_audit_head_org ON rf_audit_head (org)")
    return added


def migrate(url: str | None = None) -> list[str]:
    """Bring an existing database up to date (``qlrf db migrate``): add the columns added since it was
    created (``org`` with default ``unassigned``, ...) and align the audit sequence; idempotent.

    Returns the ``table.column`` names added (empty the second time). Run as the tables' owner."""
    engine = engine_for(url)  # creates what is missing and adds the later columns once
    added = list(getattr(engine, "qlrf_added", [])) + _add_missing_columns(engine)
    engine.qlrf_added = []  # type: ignore[attr-defined]  # reported once
    if engine.dialect.name == "postgresql":
        _align_audit_seq(engine)
    return added


def _align_audit_seq(engine: Engine) -> None:
    """rf_audit_seq past every existing record (a sequence created on an old database starts at 1)."""
    try:
        with system_scope("schema"), write_tx(engine) as conn:
            conn.exec_driver_sql(
                "SELECT setval('rf_audit_seq', (SELECT max(seq) FROM rf_audit_log)) "
                "WHERE has_sequence_privilege('rf_audit_seq', 'UPDATE') "
                "AND (SELECT max(seq) FROM rf_audit_log) > (SELECT last_value FROM rf_audit_seq)"
            )
    except ProgrammingError:
        pass  # the application role may not move the sequence (setup-rls aligned it as the owner)


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction: BEGIN IMMEDIATE on SQLite; commit on success, roll back on error."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(qlrf_write=True)
        with conn.begin():
            yield conn


@contextmanager
def read_tx(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


def utc(value: datetime | None) -> datetime | None:
    """A timestamp as aware UTC (SQLite gives naive UTC back)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def now_utc() -> datetime:
    return datetime.now(UTC)


def db_now(conn: Connection) -> datetime:
    """The database's clock, read inside `conn`'s transaction, as aware UTC.

    Expiry and audit timestamps are judged against it rather than the caller's clock, so a caller
    (or a host whose clock is set back) cannot make an expired approval current or backdate a
    record. PostgreSQL: the server's ``clock_timestamp()``; SQLite: ``strftime('now')`` (the
    writing process's clock, millisecond precision: an embedded database has no other).
    """
    if conn.dialect.name == "sqlite":
        value = conn.exec_driver_sql("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')").scalar()
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return utc(conn.exec_driver_sql("SELECT clock_timestamp()").scalar())


__all__ = [
    "GENESIS_HASH",
    "alert_ledger",
    "audit_head",
    "audit_log",
    "database_url",
    "db_now",
    "dispose_engines",
    "engine_for",
    "metadata",
    "migrate",
    "org_column",
    "read_tx",
    "tasks",
    "utc",
    "write_tx",
]
