"""The audit log: append-only and hash-chained, so an edited or removed record is detected.

Every record is ``(seq, at, kind, actor, subject, data, prev_hash, hash)`` plus its organisation
``org`` and ``org_seq``. Each organisation has its own chain (issue 14: under row-level security a
tenant sees only its own records, so a single chain could neither be extended nor checked by it):
``org_seq`` counts from 1 without gaps within the org, ``prev_hash`` is the previous record *of the
same org* (64 zeros for the first), ``seq`` is a global record number (unique, ordered; on
PostgreSQL from the sequence ``rf_audit_seq``, so rolled-back appends may leave gaps) and

    hash = sha256(canonical JSON of {seq, at, kind, actor, subject, data, prev_hash[, org, org_seq]})

(canonical JSON: keys sorted, no spaces, UTF-8, no NaN; ``org`` and ``org_seq`` are hashed for every
org but ``unassigned``, whose records hash exactly what they did before tenancy, so a log written
before it is the ``unassigned`` chain and still verifies). A head row per org holds the chain's last
org_seq and hash and is updated in the same transaction as the append, so :meth:`AuditLog.verify`
(every chain, or one with ``org=``) finds

* an edited record (its content no longer matches its hash, or the next record's prev_hash),
* a removed record (a seq gap and a broken chain),
* a truncated tail (the log ends before the head says it does), and
* a record slipped in behind the log's back (beyond the head).

Someone who can rewrite the whole chain *and* the head row (a database owner) could forge that
alone, so the log is anchored outside the database (:mod:`qlrf.remediation.anchor`): every record
carries ``mac`` = HMAC(key, hash) with a key the database never sees, and after every committed
append the head (seq, hash) is published to a MACed head file that only moves forward. ``verify``
then also finds

* a record edited or inserted without the key (its MAC does not match), even with every later hash
  and the head row recomputed,
* a tail cut off together with the head row ("N record(s) missing after seq S"), and
* a wiped log ("audit log wiped").

Time: ``at`` comes from the database clock (:func:`qlrf.db.db_now`), read inside the append's
transaction, and is never earlier than the previous record's: a caller, or a host whose clock was
set back, cannot backdate a record. ``verify`` flags records whose ``at`` goes backwards in seq order.

Appends are serialised per chain: on PostgreSQL by locking the org's head row (``SELECT ... FOR
UPDATE``), on SQLite by ``BEGIN IMMEDIATE``; concurrent writers (threads, processes, Dagster runs)
always extend one chain per org. The anchored head (below) is global: only the whole-log verify
(system scope, or SQLite) compares with it.

Kinds (``kind``) in use: sensor_request, plan_proposed, policy_decision (``data`` must hold the gate
``input`` and the ``decision``), approval_requested, approval, rejection, modification, expiry, execution_start,
wave_start, wave_end, health_gate, canary_analysis (verdict, per-metric statistics, thresholds), rollback, execution_end, execution_recovery and execution_resumed (a
killed run found by its next execution: qlrf.remediation.recovery), dry_run (a plan walked without changing
anything: never an execution, never a task state change), alert. ``subject`` is what the record is
about: the task id (``task-...``) for everything about an approval task and its execution, a run
key or finding fingerprint for sensor requests.

**Never put secrets in ``data``** (credentials, tokens, webhook URLs with keys, passwords): the log
is append-only, so a secret written once can never be removed. As a last line of defence the values
of keys that name a secret (password, secret, token, api_key, private_key, authorization,
credentials, webhook_url, ... and keys ending in ``_password``, ``_secret``, ``_token``, ``_api_key``, ``_private_key``, ``_access_key``)
are replaced with ``"[redacted]"`` before hashing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from qlrf.db import (
    GENESIS_HASH,
    audit_head,
    audit_log,
    audit_seq,
    db_now,
    engine_for,
    read_tx,
    tasks,
    write_tx,
)
from qlrf.remediation.anchor import AnchoredHead, AuditAnchor
from qlrf.tenancy.scope import UNASSIGNED, check_org, current_scope, system_name, write_org

KINDS = frozenset(
    {
        "sensor_request",
        "plan_proposed",
        "policy_decision",
        "approval_requested",
        "approval",
        "rejection",
        "modification",
        "expiry",
        "execution_start",
        "wave_start",
        "wave_end",
        "health_gate",
        "canary_analysis",
        "rollback",
        "execution_end",
        "execution_recovery",
        "execution_resumed",
        "dry_run",
        "alert",
    }
)
REDACTED = "[redacted]"
_SECRET_KEYS = frozenset(
    {
        "password", "passwd", "pwd", "secret", "client_secret", "token", "access_token", "refresh_token",
        "id_token", "bearer", "api_key", "apikey", "private_key", "authorization", "credentials",
        "credential", "webhook_url", "smtp_password", "connection_string", "sas_token",
    }
)
_SECRET_SUFFIX = re.compile(r"(_password|_passwd|_secret|_token|_api_key|_private_key|_access_key)$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_PAGE = 5000


class AuditError(ValueError):
    """An audit record that cannot be written (bad kind, data that is not JSON)."""


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: datetime
    kind: str
    actor: str
    subject: str
    data: dict
    prev_hash: str
    hash: str
    mac: str | None = None
    org: str = UNASSIGNED
    org_seq: int | None = None

    def to_dict(self) -> dict:
        extra = {} if self.org == UNASSIGNED else {"org": self.org, "org_seq": self.org_seq}
        return extra | {
            "seq": self.seq,
            "at": _iso(self.at),
            "kind": self.kind,
            "actor": self.actor,
            "subject": self.subject,
            "data": self.data,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "mac": self.mac,
        }


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    head_seq: int = 0
    head_hash: str = GENESIS_HASH


def _is_secret_key(key: str) -> bool:
    k = key.lower().replace("-", "_")
    return k in _SECRET_KEYS or bool(_SECRET_SUFFIX.search(k))


def redact(value: Any) -> Any:
    """`value` with every secret-named key's value replaced (see the module docstring)."""
    if isinstance(value, Mapping):
        return {
            str(k): (REDACTED if _is_secret_key(str(k)) and v is not None else redact(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [redact(v) for v in items]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "as_dict"):
        return value.as_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _normalise_data(data: Mapping | None) -> dict:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise AuditError(f"audit data must be a JSON object, got {type(data).__name__}")
    try:
        text = json.dumps(redact(data), sort_keys=True, default=_json_default, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AuditError(f"audit data is not JSON: {exc}") from exc
    return json.loads(text)  # exactly what a reader will parse back


def _iso(at: datetime) -> str:
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")


def record_hash(seq: int, at: str, kind: str, actor: str, subject: str, data: Any, prev_hash: str, *,
                org: str = UNASSIGNED, org_seq: int | None = None) -> str:
    """The record's hash. A record of an organisation also hashes the org and its place in the org's
    chain (so it cannot be moved to another org's chain); ``unassigned`` records hash exactly what
    they hashed before tenancy, so existing logs still verify."""
    body = {"seq": seq, "at": at, "kind": kind, "actor": actor, "subject": subject, "data": data, "prev_hash": prev_hash}
    if org != UNASSIGNED:
        body |= {"org": org, "org_seq": org_seq}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def _row_record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=int(row.seq),
        at=datetime.fromisoformat(row.at),
        kind=row.kind,
        actor=row.actor,
        subject=row.subject,
        data=json.loads(row.data),
        prev_hash=row.prev_hash,
        hash=row.hash,
        mac=row.mac,
        org=row.org,
        org_seq=int(row.org_seq) if row.org_seq is not None else int(row.seq),
    )


class AuditLog:
    """The hash-chained, keyed and anchored audit log in the database `engine_for(url)` picks.

    `anchor`: the key and head file (default: from the environment, see :mod:`qlrf.remediation.anchor`).
    `clock`: for tests only; by default record times come from the database clock.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        engine: Engine | None = None,
        anchor: AuditAnchor | None = None,
        clock: Callable[[], datetime] | None = None,
    ):
        self.engine = engine or engine_for(url)
        self.anchor = anchor or AuditAnchor.from_env(self.engine.url.render_as_string(hide_password=True))
        self.clock = clock

    # --- writing -----------------------------------------------------------------------------------

    def append_once(self, kind: str, actor: str, subject: str, data: Mapping | None = None, *,
                    org: str | None = None) -> AuditRecord | None:
        """Append unless a record of this kind already exists for the subject (sensor ticks repeat);
        returns the new record, or None when there was one already."""
        if self.records(subject=subject, kind=kind, limit=1):
            return None
        return self.append(kind, actor, subject, data, org=org)

    def append(self, kind: str, actor: str, subject: str, data: Mapping | None = None, *,
               org: str | None = None) -> AuditRecord:
        """Append one record (its own transaction) and return it with its seq and hash.

        `org`: the organisation whose chain the record joins; None: the subject task's organisation
        when the subject is a task, else the writer's (:func:`qlrf.tenancy.scope.write_org`)."""
        with write_tx(self.engine) as conn:
            record = self.append_in(conn, kind, actor, subject, data, org=org)
        self.publish(record)
        return record

    def publish(self, record: AuditRecord) -> None:
        """Move the anchored head to `record` (committed): call after the append's transaction."""
        self.anchor.advance(record.seq, record.hash)

    def authentic(self, record: AuditRecord) -> bool:
        """The record's content matches its hash and its hash carries this log's MAC."""
        digest = record_hash(record.seq, _iso(record.at), record.kind, record.actor, record.subject, record.data,
                             record.prev_hash)
        return digest == record.hash and record.mac is not None and hmac.compare_digest(record.mac, self.anchor.mac(digest))

    def _stamp(self, conn: Connection, org: str, last_org_seq: int) -> str:
        """The new record's time: the database clock, never before the previous record's (of its org)."""
        now = self.clock().astimezone(UTC) if self.clock is not None else db_now(conn)
        if last_org_seq:
            previous = conn.execute(
                select(audit_log.c.at).where(audit_log.c.org == org, audit_log.c.org_seq == last_org_seq)
            ).scalar()
            if previous is not None and datetime.fromisoformat(previous) > now:
                now = datetime.fromisoformat(previous)
        return _iso(now)

    def lock(self, conn: Connection, org: str | None = None) -> tuple[int, str]:
        """Take the append lock of `org`'s chain (None: the writer's org) inside `conn`'s transaction;
        returns that chain's head (org_seq, hash). A new organisation's head is created here."""
        org = check_org(org) if org is not None else write_org()
        query = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.org == org)
        if conn.dialect.name != "sqlite":  # SQLite: BEGIN IMMEDIATE already holds the write lock
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is not None:
            return int(row.seq), row.hash
        if org == UNASSIGNED or conn.execute(select(audit_log.c.seq).where(audit_log.c.org == org).limit(1)).first():
            # the unassigned head is created with the tables; any org's head vanishing is tampering
            raise AuditError(f"the audit head row of {org} is missing: the log was tampered with (run `qlrf audit verify`)")
        self._new_head(conn, org)
        row = conn.execute(query).first()
        return int(row.seq), row.hash

    def _new_head(self, conn: Connection, org: str) -> None:
        """The first record of `org`: its head row (id: minus a fresh global number, never 1)."""
        ident = -self._next_seq(conn)
        nested = conn.begin_nested()  # two writers starting the same org: one insert wins
        try:
            conn.execute(insert(audit_head).values(id=ident, seq=0, hash=GENESIS_HASH, org=org))
            nested.commit()
        except IntegrityError:
            nested.rollback()

    def _next_seq(self, conn: Connection) -> int:
        """The next global record number: a sequence on PostgreSQL (a tenant cannot see the others'
        records), max + 1 on SQLite (BEGIN IMMEDIATE: one writer at a time)."""
        if conn.dialect.name == "sqlite":
            return int(conn.execute(select(func.coalesce(func.max(audit_log.c.seq), 0))).scalar()) + 1
        return int(conn.execute(audit_seq.next_value()).scalar())

    def org_of(self, conn: Connection, subject: str) -> str:
        """The organisation a record about `subject` belongs to: the task's, else the writer's."""
        if subject.startswith("task-"):
            found = conn.execute(select(tasks.c.org).where(tasks.c.id == subject)).scalar()
            if found:
                return found
        return write_org()

    def append_in(self, conn: Connection, kind: str, actor: str, subject: str, data: Mapping | None = None, *,
                  org: str | None = None) -> AuditRecord:
        """Append inside an open write transaction (e.g. together with a task's state change).

        `org`: see :meth:`append`. Inside a system scope the record says so (``tenant_scope`` in data)."""
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise AuditError(f"audit kind must be a lower_snake_case word, got {kind!r}")
        if not isinstance(actor, str) or not actor.strip():
            raise AuditError("audit records must name their actor")
        if not isinstance(subject, str) or not subject.strip():
            raise AuditError("audit records must name their subject")
        body = _normalise_data(data)
        system = system_name()
        if system is not None:
            body.setdefault("tenant_scope", f"system:{system}")
        org = check_org(org) if org is not None else self.org_of(conn, subject)
        org_seq, prev = self.lock(conn, org)
        at = self._stamp(conn, org, org_seq)
        org_seq += 1
        seq = self._next_seq(conn)
        digest = record_hash(seq, at, kind, actor, subject, body, prev, org=org, org_seq=org_seq)
        mac = self.anchor.mac(digest)
        conn.execute(
            insert(audit_log).values(
                seq=seq, at=at, kind=kind, actor=actor, subject=subject, data=canonical_json(body), prev_hash=prev,
                hash=digest, mac=mac, org=org, org_seq=org_seq,
            )
        )
        conn.execute(update(audit_head).where(audit_head.c.org == org).values(seq=org_seq, hash=digest))
        return AuditRecord(seq, datetime.fromisoformat(at), kind, actor, subject, body, prev, digest, mac, org, org_seq)

    # --- reading -----------------------------------------------------------------------------------

    def records(self, subject: str | None = None, kind: str | None = None, limit: int | None = None, *,
                org: str | None = None) -> list[AuditRecord]:
        """Records in seq order; with `limit`, the newest `limit` of them (still oldest first).
        `org`: only that organisation's (under RLS a tenant sees only its own anyway)."""
        query = select(audit_log)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        if kind is not None:
            query = query.where(audit_log.c.kind == kind)
        if org is not None:
            query = query.where(audit_log.c.org == org)
        if limit is not None:
            query = query.order_by(audit_log.c.seq.desc()).limit(max(0, int(limit)))
        else:
            query = query.order_by(audit_log.c.seq)
        with read_tx(self.engine) as conn:
            rows = conn.execute(query).all()
        records = [_row_record(r) for r in rows]
        return sorted(records, key=lambda r: r.seq) if limit is not None else records

    def head(self, org: str | None = None) -> tuple[int, str]:
        """(org_seq, hash) of `org`'s chain head (None: the unassigned chain, the only one before tenancy)."""
        with read_tx(self.engine) as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash)
                               .where(audit_head.c.org == (org or UNASSIGNED))).first()
        return (int(row.seq), row.hash) if row else (0, GENESIS_HASH)

    def _heads(self, org: str | None) -> dict[str, tuple[int, str]]:
        query = select(audit_head.c.org, audit_head.c.seq, audit_head.c.hash)
        if org is not None:
            query = query.where(audit_head.c.org == org)
        with read_tx(self.engine) as conn:
            return {r.org: (int(r.seq), r.hash) for r in conn.execute(query).all()}

    def verify(self, *, org: str | None = None) -> AuditVerification:
        """Walk every organisation's chain against its head row; the whole log (`org` None) is also
        checked against the anchored head. Every problem is listed.

        `org`: that organisation's chain only (``qlrf audit verify --org``): what a tenant can check
        under RLS. The anchored head is global (it moves with every org's appends), so it is
        compared only when the whole log is walked."""
        problems: list[str] = []
        # The anchored head first: it is published after the commit, so the head rows read next are at
        # least as far along, and appends made while we walk cannot look like a truncation.
        anchored = self.anchor.read_head() if org is None and not self._tenant_view() else None
        heads = self._heads(org)
        walk = _Walk(self, problems, anchored.seq if anchored is not None else -1, heads)
        after = 0
        while True:
            query = select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(_PAGE)
            if org is not None:
                query = query.where(audit_log.c.org == org)
            with read_tx(self.engine) as conn:
                rows = conn.execute(query).all()
            if not rows:
                break
            for row in rows:
                walk.check(row)
            after = int(rows[-1].seq)
        walk.finish()
        head_seq, head_hash, cut = self._check_heads(walk, heads, org, problems)
        if anchored is not None:
            self._check_anchor(walk, anchored, head_seq if not cut else None, problems)
        return AuditVerification(ok=not problems, checked=walk.checked, problems=problems, head_seq=head_seq,
                                 head_hash=head_hash)

    def _tenant_view(self) -> bool:
        """Under RLS a tenant's session sees only its orgs' chains: the global anchored head cannot be
        compared there (it counts every org's records), so each visible chain is checked alone."""
        scope = current_scope()
        return self.engine.dialect.name == "postgresql" and scope is not None and scope.system is None

    def _check_heads(self, walk: _Walk, heads: dict[str, tuple[int, str]], org: str | None,
                     problems: list[str]) -> tuple[int, str, bool]:
        """Each chain against its head row; returns (global seq and hash of the newest head record, cut)."""
        newest, newest_hash, cut = 0, "", False
        for name in sorted(set(heads) | set(walk.chains)):
            chain = walk.chains.get(name) or _Chain()
            if name not in heads:
                problems.append(f"the audit head row{_of(name)} is missing (deleted?)")
                continue
            head_seq, head_hash = heads[name]
            if chain.last < head_seq:
                cut = True
                problems.append(
                    f"{_org_prefix(name)}the log ends at seq {chain.last} but the head records seq {head_seq}: "
                    f"{head_seq - chain.last} record(s) removed from the tail"
                )
            elif chain.last == head_seq and chain.prev_hash != head_hash:
                problems.append(f"{_org_prefix(name)}the head's hash does not match record {chain.last_global}'s hash "
                                "(the tail was rewritten)")
            if head_seq and chain.last >= head_seq and chain.head_global > newest:
                newest, newest_hash = chain.head_global, chain.head_hash
        with read_tx(self.engine) as conn:
            query = select(audit_head.c.org, audit_head.c.seq)
            if org is not None:
                query = query.where(audit_head.c.org == org)
            for name, now_head in conn.execute(query).all():
                beyond = conn.execute(select(func.count()).select_from(audit_log).where(
                    audit_log.c.org == name, func.coalesce(audit_log.c.org_seq, audit_log.c.seq) > now_head)).scalar()
                if beyond:
                    problems.append(f"{_org_prefix(name)}{beyond} record(s) beyond the head seq {now_head}: "
                                    "not appended through the log")
        return newest, newest_hash, cut

    def _check_anchor(self, walk: _Walk, anchored: AnchoredHead, head_seq: int | None, problems: list[str]) -> None:
        """Compare the log with the head published outside the database (truncation, wipe, rewrite).
        `head_seq`: global seq of the newest record the head rows point at (None: a chain was cut)."""
        if anchored.problem:
            problems.append(anchored.problem)
            return
        if not anchored.present:
            if walk.checked:
                problems.append(f"the anchored head {self.anchor.head_path} is missing: truncation cannot be ruled out")
            return
        if walk.checked == 0 and anchored.seq > 0:
            problems.append(f"audit log wiped: the anchored head records seq {anchored.seq} but the log is empty")
        elif walk.last_seq < anchored.seq and head_seq is not None and head_seq < anchored.seq:  # the head row hides the cut
            problems.append(
                f"{anchored.seq - walk.last_seq} record(s) missing after seq {walk.last_seq} "
                f"(the anchored head records seq {anchored.seq})"
            )
        elif anchored.seq in walk.hashes and walk.hashes[anchored.seq] != anchored.hash:
            problems.append(f"record {anchored.seq} does not match the anchored head's hash (the log was rewritten)")


def _org_prefix(org: str) -> str:
    return "" if org == UNASSIGNED else f"{org}: "


def _of(org: str) -> str:
    return "" if org == UNASSIGNED else f" of {org}"


@dataclass
class _Chain:
    """Where one organisation's chain has got to in a walk."""

    last: int = 0  # org_seq of the last record seen
    last_global: int = 0
    prev_hash: str = GENESIS_HASH
    prev_at: datetime | None = None
    head_global: int = 0  # global seq of the record the head row points at
    head_hash: str = ""


class _Walk:
    """One pass over the records in seq order: each org's chain, content, MAC and time order."""

    def __init__(self, log: AuditLog, problems: list[str], anchored_seq: int, heads: dict[str, tuple[int, str]]):
        self.log, self.problems = log, problems
        self.checked, self.last_seq = 0, 0
        self.chains: dict[str, _Chain] = {}
        self.heads = heads
        self.unkeyed: list[int] = []
        self.hashes: dict[int, str] = {}
        self.anchored_seq = anchored_seq

    def check(self, row: Any) -> None:
        seq = int(row.seq)
        org = row.org or UNASSIGNED
        org_seq = int(row.org_seq) if row.org_seq is not None else seq
        head = self.heads.get(org)
        if head is not None and org_seq > head[0]:
            return  # appended after the heads were read (or behind the log's back: counted later)
        chain = self.chains.setdefault(org, _Chain())
        prefix = _org_prefix(org)
        self.checked += 1
        expected = chain.last + 1
        if org_seq != expected:
            span = f"record {expected}" if org_seq == expected + 1 else f"records {expected}..{org_seq - 1}"
            self.problems.append(f"{prefix}{span} missing: seq jumps from {expected - 1} to {org_seq} (removed)")
        try:
            data = json.loads(row.data)
            digest = record_hash(seq, row.at, row.kind, row.actor, row.subject, data, row.prev_hash, org=org,
                                 org_seq=org_seq)
        except (ValueError, TypeError) as exc:
            self.problems.append(f"record {seq}: unreadable ({exc}) (edited)")
            digest = None
        if digest is not None and digest != row.hash:
            self.problems.append(f"record {seq} ({row.kind}, {row.subject}): content does not match its hash (edited)")
        if row.prev_hash != chain.prev_hash:
            before = f"record {chain.last_global}" if chain.last_global else "the chain's start"
            self.problems.append(
                f"record {seq}: prev_hash does not match the hash of {prefix}{before} "
                "(the chain is broken: a record before it was edited or removed)"
                if prefix else
                f"record {seq}: prev_hash does not match the hash of record {chain.last_global} "
                "(the chain is broken: a record before it was edited or removed)"
            )
        self._check_mac(seq, row)
        self._check_time(chain, seq, row.at)
        if seq == self.anchored_seq:
            self.hashes[seq] = row.hash
        if head is not None and org_seq == head[0]:
            chain.head_global, chain.head_hash = seq, row.hash
        chain.prev_hash, chain.last, chain.last_global = row.hash, org_seq, seq
        self.last_seq = max(self.last_seq, seq)

    def _check_mac(self, seq: int, row: Any) -> None:
        if row.mac is None:
            self.unkeyed.append(seq)
        elif not hmac.compare_digest(row.mac, self.log.anchor.mac(row.hash)):
            self.problems.append(f"record {seq}: MAC does not match (edited, or written without the audit key)")

    def _check_time(self, chain: _Chain, seq: int, at: str) -> None:
        try:
            when = datetime.fromisoformat(at)
        except (TypeError, ValueError):
            self.problems.append(f"record {seq}: timestamp {at!r} is not ISO 8601 (edited)")
            return
        if chain.prev_at is not None and when < chain.prev_at:
            self.problems.append(
                f"record {seq}: timestamp {at} is earlier than record {chain.last_global}'s {_iso(chain.prev_at)} "
                "(out of order: backdated?)"
            )
        chain.prev_at = when

    def finish(self) -> None:
        if self.unkeyed:
            self.problems.append(
                f"{len(self.unkeyed)} record(s) carry no MAC (seq {self.unkeyed[0]}..{self.unkeyed[-1]}): "
                "written before the log was keyed, or behind its back"
            )


__all__ = ["AuditAnchor", "KINDS", "REDACTED", "AuditError", "AuditLog", "AuditRecord", "AuditVerification", "canonical_json", "record_hash", "redact"]
