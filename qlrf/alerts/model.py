"""The alert itself: what happened, how bad it is, and the key that deduplicates it.

Everything else in :mod:`qlrf.alerts` depends on this module and nothing here depends on them, so
sensors can build alerts without pulling in channels or the database.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from qlrf.envparse import environ

SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
SOURCE = "resilience-fabric"
ENV_DAGSTER_UI_URL = "QLRF_DAGSTER_UI_URL"


class AlertConfigError(ValueError):
    """An unusable alert setting; the message names the variable (never its secret value)."""


@dataclass(frozen=True)
class Alert:
    """One thing a human should know. ``key`` deduplicates: same key, same alert."""

    kind: str  # run_failure | drift_findings | approval_expiring | approval_expired | ...
    severity: str  # info | warning | critical
    title: str
    text: str
    key: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    link: str | None = None

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"alert severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}")
        if not self.key:
            raise ValueError("an alert needs a key (what it is about), for deduplication")

    def payload(self, at: datetime | None = None) -> dict[str, Any]:
        """The generic webhook's JSON body."""
        return {
            "source": SOURCE,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "text": self.text,
            "key": self.key,
            "fields": {str(k): _jsonable(v) for k, v in self.fields.items()},
            "link": self.link,
            "at": (at or datetime.now(UTC)).isoformat(timespec="seconds"),
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def severity_at_least(severity: str, minimum: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(minimum)


def key_hash(key: str) -> str:
    """A fixed-width digest of an alert key: keys can be long, the ledger's primary key cannot."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters with an ellipsis (channels and the audit cap lengths)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def env_number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    """A numeric setting; blank means `default`. Errors name the variable and the text."""
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise AlertConfigError(f"{name}={text!r}: expected a number") from None
    if value < minimum:
        raise AlertConfigError(f"{name}={text!r}: expected a number >= {minimum:g}")
    return value


def run_link(run_id: str, env: Mapping[str, str] | None = None) -> str | None:
    """The Dagster UI page of a run when ``QLRF_DAGSTER_UI_URL`` is set."""
    base = (environ(env).get(ENV_DAGSTER_UI_URL) or "").rstrip("/")
    return f"{base}/runs/{run_id}" if base else None


__all__ = [
    "SEVERITIES",
    "SOURCE",
    "Alert",
    "AlertConfigError",
    "cut",
    "env_number",
    "key_hash",
    "run_link",
    "severity_at_least",
]
