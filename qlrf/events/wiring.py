"""Evented stores: the task store and the executor's audit sink with the outbox hook, for every place
that builds one for real work."""

from __future__ import annotations

from typing import Any

from qlrf.db import write_tx
from qlrf.events.emit import wave_completed
from qlrf.events.outbox import Outbox, task_listener
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog, AuditRecord


def evented_store(url: str | None = None, audit: AuditLog | None = None, **kwargs: Any) -> TaskStore:
    """A TaskStore whose task changes write their events to the outbox in the same transaction."""
    return TaskStore(url, audit=audit, on_change=[task_listener(Outbox(url, clock=kwargs.get("clock")))], **kwargs)


class EventedAudit:
    """The audit log as the executor's sink, writing ``wave.completed`` to the outbox in the same
    transaction as the wave's ``wave_end`` record: a wave is announced exactly when it is on record.

    The executor records ``wave_start`` (targets), ``health_gate`` (healthy of total) and ``wave_end``
    (state) per wave; the counts come from the first two. Everything else is the plain audit log."""

    def __init__(self, audit: AuditLog, outbox: Outbox):
        self.audit, self.outbox = audit, outbox
        self._targets: dict[tuple[str, int], int] = {}
        self._health: dict[tuple[str, int], tuple[int, int]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.audit, name)

    def append(self, kind: str, actor: str, subject: str, data: dict | None = None, **options: Any) -> AuditRecord:
        """As AuditLog.append; keyword options (such as a record's organisation) pass through unchanged."""
        events = self._events(kind, subject, data or {})
        if not events:
            return self.audit.append(kind, actor, subject, data, **options)
        with write_tx(self.audit.engine) as conn:
            record = self.audit.append_in(conn, kind, actor, subject, data, **options)
            self.outbox.write_in(conn, events)
        self.audit.publish(record)
        return record

    def _events(self, kind: str, subject: str, data: dict) -> list:
        wave = data.get("wave")
        if not isinstance(wave, int):
            return []
        if kind == "wave_start":
            self._targets[(subject, wave)] = int(data.get("targets") or 0)
        elif kind == "health_gate":
            self._health[(subject, wave)] = (int(data.get("healthy_count") or 0), int(data.get("total") or 0))
        elif kind == "wave_end" and data.get("plan_hash"):
            healthy, total = self._health.pop((subject, wave), (0, self._targets.get((subject, wave), 0)))
            if data.get("state") == "error":
                healthy, total = 0, max(total, self._targets.get((subject, wave), 0))
            return wave_completed(subject, data["plan_hash"], wave, healthy, max(total - healthy, 0), self.outbox.clock())
        return []


def evented_audit(url: str | None = None, audit: AuditLog | None = None) -> EventedAudit:
    """The executor's audit sink for real runs: the audit log of `url` announcing finished waves."""
    return EventedAudit(audit if audit is not None else AuditLog(url), Outbox(url))
