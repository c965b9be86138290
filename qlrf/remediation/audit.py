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

Someone who can rewrite the whole chain *and* the head (a database owner) can still forge it;
publish ``verify().head_hash`` elsewhere (a ticket, a signed message) to anchor it.

Appends are serialised: on PostgreSQL by locking the head row (``SELECT ... FOR UPDATE``), on
SQLite by ``BEGIN IMMEDIATE``; concurrent writers (threads, processes, Dagster runs) always extend
one chain.

Kinds (``kind``) in use: sensor_request, plan_proposed, policy_decision (``data`` must hold the gate
``input`` and the ``decision``), approval_requested, approval, rejection, modification, expiry, execution_start,
wave_start, wave_end, health_gate, rollback, execution_end, dry_run (a plan walked without changing
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
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.engine import Connection

from qlrf.db import GENESIS_HASH, audit_head, audit_log, engine_for, read_tx, write_tx

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
        "rollback",
        "execution_end",
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
    )


class AuditLog:
    """The hash-chained audit log in the database `engine_for(url)` picks."""

    def __init__(self, url: str | None = None, *, engine: Engine | None = None):
        self.engine = engine or engine_for(url)

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
            return self.append_in(conn, kind, actor, subject, data)

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
        seq += 1
        at = _iso(datetime.now(UTC))
        digest = record_hash(seq, at, kind, actor, subject, body, prev)
        conn.execute(
            insert(audit_log).values(
                seq=seq, at=at, kind=kind, actor=actor, subject=subject, data=canonical_json(body), prev_hash=prev, hash=digest
            )
        )
        conn.execute(update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=digest))
        return AuditRecord(seq, datetime.fromisoformat(at), kind, actor, subject, body, prev, digest)

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
        """Walk the whole chain against the head; every problem found is listed, none is fatal."""
        problems: list[str] = []
        with read_tx(self.engine) as conn:
            head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
        if head is None:
            problems.append("the audit head row is missing (deleted?)")
            head_seq, head_hash = None, None
        else:
            head_seq, head_hash = int(head.seq), head.hash
        checked = 0
        expected_seq, prev_hash, last_seq = 1, GENESIS_HASH, 0
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
                seq = int(row.seq)
                checked += 1
                if seq != expected_seq:
                    span = f"record {expected_seq}" if seq == expected_seq + 1 else f"records {expected_seq}..{seq - 1}"
                    problems.append(f"{span} missing: seq jumps from {expected_seq - 1} to {seq} (removed)")
                try:
                    data = json.loads(row.data)
                    digest = record_hash(seq, row.at, row.kind, row.actor, row.subject, data, row.prev_hash)
                except (ValueError, TypeError) as exc:
                    problems.append(f"record {seq}: unreadable ({exc}) (edited)")
                    digest = None
                if digest is not None and digest != row.hash:
                    problems.append(f"record {seq} ({row.kind}, {row.subject}): content does not match its hash (edited)")
                if row.prev_hash != prev_hash:
                    problems.append(
                        f"record {seq}: prev_hash does not match the hash of record {last_seq} "
                        "(the chain is broken: a record before it was edited or removed)"
                    )
                prev_hash, last_seq, expected_seq = row.hash, seq, seq + 1
            after = last_seq
        if head_seq is not None:
            if last_seq < head_seq:
                problems.append(
                    f"the log ends at seq {last_seq} but the head records seq {head_seq}: "
                    f"{head_seq - last_seq} record(s) removed from the tail"
                )
            elif last_seq == head_seq and prev_hash != head_hash:
                problems.append(f"the head's hash does not match record {last_seq}'s hash (the tail was rewritten)")
            with read_tx(self.engine) as conn:
                now_head = conn.execute(select(audit_head.c.seq).where(audit_head.c.id == 1)).scalar()
                beyond = conn.execute(
                    select(func.count()).select_from(audit_log).where(audit_log.c.seq > (now_head or 0))
                ).scalar()
            if beyond:
                problems.append(f"{beyond} record(s) beyond the head seq {now_head}: not appended through the log")
        return AuditVerification(
            ok=not problems, checked=checked, problems=problems, head_seq=head_seq or 0, head_hash=head_hash or ""
        )


__all__ = ["KINDS", "REDACTED", "AuditError", "AuditLog", "AuditRecord", "AuditVerification", "canonical_json", "record_hash", "redact"]
