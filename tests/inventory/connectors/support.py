"""Shared pieces of the connector tests (each against its loopback cloud)."""

from __future__ import annotations

from typing import Any


def without_time(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without ``discovered_at``, in asset order: a live run and a file run compare equal."""
    return sorted(({k: v for k, v in r.items() if k != "discovered_at"} for r in rows), key=lambda r: r["asset_id"])
