"""Mutating cloud calls, described before they are made: what a dry run lists instead of sending.

Every driver sends each call that changes something (create, update, terminate, clone, rename...)
through its :class:`CallRecorder` as a :class:`CloudCall` (platform, service, operation, the
resource it targets and its key parameters). A live recorder records the call and makes it; a
dry-run recorder records it and makes nothing, returning a placeholder the driver can carry on
with. Read-only calls (describe, list, get) are made directly in both modes, so a dry run resolves
real targets. The same records from a live run show exactly what a real execution sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class CloudCall:
    """One mutating call: ``operation`` as the platform's API names it, on ``target``."""

    platform: str
    service: str
    operation: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.service}.{self.operation}"

    def as_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "service": self.service, "operation": self.operation,
                "target": self.target, "params": dict(self.params)}

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.platform} {self.name} {self.target}" + (f" ({params})" if params else "")


class CallRecorder:
    """Records every mutating call; makes it unless ``dry_run``."""

    def __init__(self, dry_run: bool = False):
        self.dry_run = dry_run
        self.calls: list[CloudCall] = []

    def send(self, call: CloudCall, perform: Callable[[], T], dry_result: T | None = None) -> T | None:
        """Record `call`; then run `perform` (live) or return `dry_result` (dry run, nothing sent)."""
        self.calls.append(call)
        if self.dry_run:
            return dry_result
        return perform()

    def mark(self) -> int:
        """A position to read the calls made since (see :meth:`since`)."""
        return len(self.calls)

    def since(self, mark: int) -> list[CloudCall]:
        return list(self.calls[mark:])


__all__ = ["CallRecorder", "CloudCall"]
