"""What was delivered when: the dedup ledger behind the dispatcher's window.

:class:`AlertLedger` keeps one row per (key, channel) in ``rf_alert_ledger`` (declared in
:mod:`qlrf.db` with the task and audit tables), so the window survives restarts and is shared by
every process. A record older than the dedup window can no longer suppress anything, so records
older than ``retention`` are deleted: the dispatcher prunes after it records a delivery, and
:meth:`AlertLedger.prune` does it on demand. The clock is always passed in, never read here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, delete, insert, select

from qlrf.alerts.model import key_hash
from qlrf.db import alert_ledger, engine_for, read_tx, utc, write_tx

DEFAULT_RETENTION = timedelta(days=30)


class Ledger(Protocol):
    retention: timedelta

    def last_sent(self, key: str, channel: str) -> datetime | None: ...

    def mark(self, key: str, channel: str, kind: str, at: datetime) -> None: ...

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

    def mark(self, key: str, channel: str, kind: str, at: datetime) -> None:
        digest = key_hash(key)
        with write_tx(self.engine) as conn:
            conn.execute(delete(alert_ledger).where(alert_ledger.c.key_hash == digest, alert_ledger.c.channel == channel))
            conn.execute(insert(alert_ledger).values(key_hash=digest, channel=channel, key=key, kind=kind, sent_at=at))

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

    def last_sent(self, key: str, channel: str) -> datetime | None:
        return self._sent.get((key, channel))

    def mark(self, key: str, channel: str, kind: str, at: datetime) -> None:
        self._sent[(key, channel)] = at

    def prune(self, now: datetime) -> int:
        cutoff = now - self.retention
        stale = [k for k, at in self._sent.items() if at < cutoff]
        for k in stale:
            del self._sent[k]
        return len(stale)


__all__ = ["DEFAULT_RETENTION", "AlertLedger", "Ledger", "MemoryLedger"]
