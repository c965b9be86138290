"""What was delivered when: the dedup ledger behind the dispatcher's window, and the alerts kept.

:class:`AlertLedger` keeps one row per (key, channel) in ``rf_alert_ledger`` (declared in
:mod:`qlrf.db` with the task and audit tables), so the window survives restarts and is shared by
every process. A record older than the dedup window can no longer suppress anything, so records
older than ``retention`` are deleted: the dispatcher prunes after it records a delivery, and
:meth:`AlertLedger.prune` does it on demand. The clock is always passed in, never read here.

An alert raised while no channel is configured is not dropped: it is kept under the channel
:data:`NO_CHANNEL` ("none"), with its severity and title like every delivery, and
:func:`list_alerts` returns what the ledger holds (the CLI's `qlrf alerts list`, the dashboard).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, delete, func, insert, select

from qlrf.alerts.model import key_hash
from qlrf.db import alert_ledger, engine_for, read_tx, utc, write_tx

DEFAULT_RETENTION = timedelta(days=30)
NO_CHANNEL = "none"  # the channel of an alert kept because no channel is configured


class Ledger(Protocol):
    retention: timedelta

    def last_sent(self, key: str, channel: str) -> datetime | None: ...

    def mark(self, key: str, channel: str, kind: str, at: datetime, severity: str | None = None,
             title: str | None = None) -> None: ...

    def prune(self, now: datetime) -> int: ...


def _check_retention(retention: timedelta) -> timedelta:
    if retention <= timedelta(0):
        raise ValueError(f"alert ledger retention must be positive, got {retention}")
    return retention


class AlertLedger:
    """When each (key, channel) was last delivered, in the remediation database (survives restarts)."""

    def __init__(self, url: str | None = None, engine: Engine | None = None, *, retention: timedelta = DEFAULT_RETENTION):
        self.engine = engine or engine_for(url)
        self.retention = _check_retention(retention)

    def last_sent(self, key: str, channel: str) -> datetime | None:
        query = select(alert_ledger.c.sent_at).where(
            alert_ledger.c.key_hash == key_hash(key), alert_ledger.c.channel == channel
        )
        with read_tx(self.engine) as conn:
            return utc(conn.execute(query).scalar())

    def mark(self, key: str, channel: str, kind: str, at: datetime, severity: str | None = None,
             title: str | None = None) -> None:
        digest = key_hash(key)
        with write_tx(self.engine) as conn:
            conn.execute(delete(alert_ledger).where(alert_ledger.c.key_hash == digest, alert_ledger.c.channel == channel))
            conn.execute(insert(alert_ledger).values(key_hash=digest, channel=channel, key=key, kind=kind, sent_at=at,
                                                     severity=severity, title=title))

    def prune(self, now: datetime) -> int:
        """Delete records sent before ``now - retention``; returns how many went."""
        cutoff = now - self.retention
        with write_tx(self.engine) as conn:
            return conn.execute(delete(alert_ledger).where(alert_ledger.c.sent_at < cutoff)).rowcount or 0


class MemoryLedger:
    """A ledger that forgets on restart (tests, benchmarks, a dispatcher with no channel)."""

    def __init__(self, *, retention: timedelta = DEFAULT_RETENTION) -> None:
        self.retention = _check_retention(retention)
        self._sent: dict[tuple[str, str], datetime] = {}
        self.kept: dict[tuple[str, str], dict] = {}  # what list_alerts would return, for tests

    def last_sent(self, key: str, channel: str) -> datetime | None:
        return self._sent.get((key, channel))

    def mark(self, key: str, channel: str, kind: str, at: datetime, severity: str | None = None,
             title: str | None = None) -> None:
        self._sent[(key, channel)] = at
        self.kept[(key, channel)] = {"key": key, "kind": kind, "channel": channel, "severity": severity,
                                     "title": title, "at": at}

    def prune(self, now: datetime) -> int:
        cutoff = now - self.retention
        stale = [k for k, at in self._sent.items() if at < cutoff]
        for k in stale:
            del self._sent[k]
            self.kept.pop(k, None)
        return len(stale)


def list_alerts(
    engine: Engine | None = None, *, severity: str | None = None, kind: str | None = None,
    channel: str | None = None, limit: int = 100,
) -> tuple[list[dict], int]:
    """The alerts the ledger holds, newest first, and how many match in all.

    One row per alert key and channel (delivered, or kept under channel "none"): key, kind, channel,
    severity (None on rows written before severities were recorded), title and at (aware UTC).
    A plain loader for the CLI and the dashboard; ``engine`` defaults to the task database.
    """
    engine = engine or engine_for()
    c = alert_ledger.c
    where = [cond for cond in (c.severity == severity if severity else None, c.kind == kind if kind else None,
                               c.channel == channel if channel else None) if cond is not None]
    query = (select(c.key, c.kind, c.channel, c.severity, c.title, c.sent_at).where(*where)
             .order_by(c.sent_at.desc(), c.key, c.channel).limit(limit))
    with read_tx(engine) as conn:
        matching = conn.execute(select(func.count()).select_from(alert_ledger).where(*where)).scalar_one()
        rows = [{"key": r.key, "kind": r.kind, "channel": r.channel, "severity": r.severity, "title": r.title,
                 "at": utc(r.sent_at)} for r in conn.execute(query)]
    return rows, matching


__all__ = ["DEFAULT_RETENTION", "NO_CHANNEL", "AlertLedger", "Ledger", "MemoryLedger", "list_alerts"]
