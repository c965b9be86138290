"""The audit log: append-only and hash-chained, so an edited or removed record is detected.

Every record is ``(seq, at, kind, actor, subject, data, prev_hash, hash)`` where ``seq`` counts
from 1 without gaps, ``prev_hash`` is the previous record's ``hash`` (64 zeros for the first) and

    hash = sha256(canonical JSON of {seq, at, kind, actor, subject, data, prev_hash})

(canonical JSON: keys sorted, no spaces, UTF-8, no NaN). A separate head row holds the last seq
and hash and is updated in the same transaction as the append, so :meth:`AuditLog.verify` finds

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

Appends are serialised: on PostgreSQL by locking the head row (``SELECT ... FOR UPDATE``), on
SQLite by ``BEGIN IMMEDIATE``; concurrent writers (threads, processes, Dagster runs) always extend
one chain.

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

from qlrf.db import GENESIS_HASH, audit_head, audit_log, db_now, engine_for, read_tx, write_tx
from qlrf.remediation.anchor import AnchoredHead, AuditAnchor

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

    def to_dict(self) -> dict:
        return {
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


def record_hash(seq: int, at: str, kind: str, actor: str, subject: str, data: Any, prev_hash: str) -> str:
    body = {"seq": seq, "at": at, "kind": kind, "actor": actor, "subject": subject, "data": data, "prev_hash": prev_hash}
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

    def append_once(self, kind: str, actor: str, subject: str, data: Mapping | None = None) -> AuditRecord | None:
        """Append unless a record of this kind already exists for the subject (sensor ticks repeat);
        returns the new record, or None when there was one already."""
        if self.records(subject=subject, kind=kind, limit=1):
            return None
        return self.append(kind, actor, subject, data)

    def append(self, kind: str, actor: str, subject: str, data: Mapping | None = None) -> AuditRecord:
        """Append one record (its own transaction) and return it with its seq and hash."""
        with write_tx(self.engine) as conn:
            record = self.append_in(conn, kind, actor, subject, data)
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

    def _stamp(self, conn: Connection, last_seq: int) -> str:
        """The new record's time: the database clock, never before the previous record's time."""
        now = self.clock().astimezone(UTC) if self.clock is not None else db_now(conn)
        if last_seq:
            previous = conn.execute(select(audit_log.c.at).where(audit_log.c.seq == last_seq)).scalar()
            if previous is not None and datetime.fromisoformat(previous) > now:
                now = datetime.fromisoformat(previous)
        return _iso(now)

    def lock(self, conn: Connection) -> tuple[int, str]:
        """Take the append lock inside `conn`'s transaction; returns the head (seq, hash)."""
        query = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
        if conn.dialect.name != "sqlite":  # SQLite: BEGIN IMMEDIATE already holds the write lock
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:  # head created with the tables; recreate if someone deleted it
            raise AuditError("the audit head row is missing: the log was tampered with (run `qlrf audit verify`)")
        return int(row.seq), row.hash

    def append_in(self, conn: Connection, kind: str, actor: str, subject: str, data: Mapping | None = None) -> AuditRecord:
        """Append inside an open write transaction (e.g. together with a task's state change)."""
        if not isinstance(kind, str) or not _KIND.match(kind):
            raise AuditError(f"audit kind must be a lower_snake_case word, got {kind!r}")
        if not isinstance(actor, str) or not actor.strip():
            raise AuditError("audit records must name their actor")
        if not isinstance(subject, str) or not subject.strip():
            raise AuditError("audit records must name their subject")
        body = _normalise_data(data)
        seq, prev = self.lock(conn)
        at = self._stamp(conn, seq)
        seq += 1
        digest = record_hash(seq, at, kind, actor, subject, body, prev)
        mac = self.anchor.mac(digest)
        conn.execute(
            insert(audit_log).values(
                seq=seq, at=at, kind=kind, actor=actor, subject=subject, data=canonical_json(body), prev_hash=prev,
                hash=digest, mac=mac,
            )
        )
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest))
        return AuditRecord(seq, datetime.fromisoformat(at), kind, actor, subject, body, prev, digest, mac)

    # --- reading -----------------------------------------------------------------------------------

    def records(self, subject: str | None = None, kind: str | None = None, limit: int | None = None) -> list[AuditRecord]:
        """Records in seq order; with `limit`, the newest `limit` of them (still oldest first)."""
        query = select(audit_log)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        if kind is not None:
            query = query.where(audit_log.c.kind == kind)
        if limit is not None:
            query = query.order_by(audit_log.c.seq.desc()).limit(max(0, int(limit)))
        else:
            query = query.order_by(audit_log.c.seq)
        with read_tx(self.engine) as conn:
            rows = conn.execute(query).all()
        records = [_row_record(r) for r in rows]
        return sorted(records, key=lambda r: r.seq) if limit is not None else records

    def head(self) -> tuple[int, str]:
        with read_tx(self.engine) as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
        return (int(row.seq), row.hash) if row else (0, GENESIS_HASH)

    def verify(self) -> AuditVerification:
        """Walk the whole chain against the head row and the anchored head; every problem is listed."""
        problems: list[str] = []
        # The anchored head first: it is published after the commit, so the head row read next is at
        # least as far along, and appends made while we walk cannot look like a truncation.
        anchored = self.anchor.read_head()
        with read_tx(self.engine) as conn:
            head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
        if head is None:
            problems.append("the audit head row is missing (deleted?)")
            head_seq, head_hash = None, None
        else:
            head_seq, head_hash = int(head.seq), head.hash
        walk = _Walk(self, problems, anchored.seq)
        after = 0
        while True:
            query = select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(_PAGE)
            if head_seq is not None:
                query = query.where(audit_log.c.seq <= head_seq)
            with read_tx(self.engine) as conn:
                rows = conn.execute(query).all()
            if not rows:
                break
            for row in rows:
                walk.check(row)
            after = walk.last_seq
        walk.finish()
        if head_seq is not None:
            self._check_head_row(walk, head_seq, head_hash, problems)
        self._check_anchor(walk, anchored, head_seq or 0, problems)
        return AuditVerification(
            ok=not problems, checked=walk.checked, problems=problems, head_seq=head_seq or 0, head_hash=head_hash or ""
        )

    def _check_head_row(self, walk: _Walk, head_seq: int, head_hash: str, problems: list[str]) -> None:
        if walk.last_seq < head_seq:
            problems.append(
                f"the log ends at seq {walk.last_seq} but the head records seq {head_seq}: "
                f"{head_seq - walk.last_seq} record(s) removed from the tail"
            )
        elif walk.last_seq == head_seq and walk.prev_hash != head_hash:
            problems.append(f"the head's hash does not match record {walk.last_seq}'s hash (the tail was rewritten)")
        with read_tx(self.engine) as conn:
            now_head = conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar()
            beyond = conn.execute(
                select(func.count()).select_from(audit_log).where(audit_log.c.seq > (now_head or 0))
            ).scalar()
        if beyond:
            problems.append(f"{beyond} record(s) beyond the head seq {now_head}: not appended through the log")

    def _check_anchor(self, walk: _Walk, anchored: AnchoredHead, head_seq: int, problems: list[str]) -> None:
        """Compare the log with the head published outside the database (truncation, wipe, rewrite)."""
        if anchored.problem:
            problems.append(anchored.problem)
            return
        if not anchored.present:
            if walk.checked:
                problems.append(f"the anchored head {self.anchor.head_path} is missing: truncation cannot be ruled out")
            return
        if walk.checked == 0 and anchored.seq > 0:
            problems.append(f"audit log wiped: the anchored head records seq {anchored.seq} but the log is empty")
        elif walk.last_seq < anchored.seq and head_seq < anchored.seq:  # the head row hides the cut
            problems.append(
                f"{anchored.seq - walk.last_seq} record(s) missing after seq {walk.last_seq} "
                f"(the anchored head records seq {anchored.seq})"
            )
        elif anchored.seq in walk.hashes and walk.hashes[anchored.seq] != anchored.hash:
            problems.append(f"record {anchored.seq} does not match the anchored head's hash (the log was rewritten)")


class _Walk:
    """One pass over the records in seq order: chain, content, MAC and time order."""

    def __init__(self, log: AuditLog, problems: list[str], anchored_seq: int):
        self.log, self.problems = log, problems
        self.checked, self.last_seq, self.expected_seq = 0, 0, 1
        self.prev_hash, self.prev_at = GENESIS_HASH, None
        self.unkeyed: list[int] = []
        self.hashes: dict[int, str] = {}
        self.anchored_seq = anchored_seq

    def check(self, row: Any) -> None:
        seq = int(row.seq)
        self.checked += 1
        if seq != self.expected_seq:
            span = f"record {self.expected_seq}" if seq == self.expected_seq + 1 else f"records {self.expected_seq}..{seq - 1}"
            self.problems.append(f"{span} missing: seq jumps from {self.expected_seq - 1} to {seq} (removed)")
        try:
            data = json.loads(row.data)
            digest = record_hash(seq, row.at, row.kind, row.actor, row.subject, data, row.prev_hash)
        except (ValueError, TypeError) as exc:
            self.problems.append(f"record {seq}: unreadable ({exc}) (edited)")
            digest = None
        if digest is not None and digest != row.hash:
            self.problems.append(f"record {seq} ({row.kind}, {row.subject}): content does not match its hash (edited)")
        if row.prev_hash != self.prev_hash:
            self.problems.append(
                f"record {seq}: prev_hash does not match the hash of record {self.last_seq} "
                "(the chain is broken: a record before it was edited or removed)"
            )
        self._check_mac(seq, row)
        self._check_time(seq, row.at)
        if seq == self.anchored_seq:
            self.hashes[seq] = row.hash
        self.prev_hash, self.last_seq, self.expected_seq = row.hash, seq, seq + 1

    def _check_mac(self, seq: int, row: Any) -> None:
        if row.mac is None:
            self.unkeyed.append(seq)
        elif not hmac.compare_digest(row.mac, self.log.anchor.mac(row.hash)):
            self.problems.append(f"record {seq}: MAC does not match (edited, or written without the audit key)")

    def _check_time(self, seq: int, at: str) -> None:
        try:
            when = datetime.fromisoformat(at)
        except (TypeError, ValueError):
            self.problems.append(f"record {seq}: timestamp {at!r} is not ISO 8601 (edited)")
            return
        if self.prev_at is not None and when < self.prev_at:
            self.problems.append(
                f"record {seq}: timestamp {at} is earlier than record {self.last_seq}'s {_iso(self.prev_at)} "
                "(out of order: backdated?)"
            )
        self.prev_at = when

    def finish(self) -> None:
        if self.unkeyed:
            self.problems.append(
                f"{len(self.unkeyed)} record(s) carry no MAC (seq {self.unkeyed[0]}..{self.unkeyed[-1]}): "
                "written before the log was keyed, or behind its back"
            )


__all__ = ["AuditAnchor", "KINDS", "REDACTED", "AuditError", "AuditLog", "AuditRecord", "AuditVerification", "canonical_json", "record_hash", "redact"]
