"""Pieces every live connector uses: a scope failure, and fan-out of independent list calls."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class ScopeFailed(Exception):
    """A whole scope (subscription, project, region, vCenter) could not be read; recorded, not fatal."""

    def __init__(self, scope: str, reason: str):
        super().__init__(reason)
        self.scope = scope
        self.reason = reason


def gather(pool: ThreadPoolExecutor, calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run independent leaf calls on `pool`; each result is its value or the exception it raised.
    Leaf calls never wait on the pool themselves, so this cannot deadlock."""
    futures = {name: pool.submit(fn) for name, fn in calls.items()}
    out: dict[str, Any] = {}
    for name, future in futures.items():
        try:
            out[name] = future.result()
        except Exception as exc:  # noqa: BLE001 - returned to the caller, which decides
            out[name] = exc
    return out
