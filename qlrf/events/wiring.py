"""An evented TaskStore: the task store with the outbox hook, for every place that builds one for real work."""

from __future__ import annotations

from typing import Any

from qlrf.events.outbox import Outbox, task_listener
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog


def evented_store(url: str | None = None, audit: AuditLog | None = None, **kwargs: Any) -> TaskStore:
    """A TaskStore whose task changes write their events to the outbox in the same transaction."""
    return TaskStore(url, audit=audit, on_change=[task_listener(Outbox(url, clock=kwargs.get("clock")))], **kwargs)
