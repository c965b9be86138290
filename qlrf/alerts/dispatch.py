"""The dispatcher: every alert to every channel, at most once per key and channel within a window.

With no channel configured an alert is kept, not dropped: it is recorded in the ledger under the
channel "none" with its severity and title, so `qlrf alerts list` and the dashboard still show it.
A channel's failure is logged and reported, never raised, so one broken webhook cannot silence the
others; the deliveries that succeed are recorded in the ledger (:mod:`qlrf.alerts.ledger`), which is
pruned of records older than its retention whenever new ones are written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from qlrf.alerts.channels import Channel, ChannelError, channels_from_env
from qlrf.alerts.ledger import DEFAULT_RETENTION, NO_CHANNEL, AlertLedger, Ledger, MemoryLedger
from qlrf.alerts.model import SEVERITIES, Alert, AlertConfigError, cut, env_number, severity_at_least
from qlrf.db import utc
from qlrf.envparse import environ

ENV_DEDUP_HOURS = "QLRF_ALERT_DEDUP_HOURS"
ENV_MIN_SEVERITY = "QLRF_ALERT_MIN_SEVERITY"
ENV_RETENTION_DAYS = "QLRF_ALERT_RETENTION_DAYS"
DEFAULT_WINDOW = timedelta(hours=6)

log = logging.getLogger(__name__)


@dataclass
class DispatchResult:
    key: str
    sent: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)  # delivered within the window already
    failed: dict[str, str] = field(default_factory=dict)  # channel -> error (no secrets)
    dropped: bool = False  # below the minimum severity
    kept: bool = False  # no channel configured: recorded in the ledger under channel "none"

    @property
    def ok(self) -> bool:
        return not self.failed


class Dispatcher:
    """Send alerts to every channel, at most once per key and channel within ``window``."""

    def __init__(
        self,
        channels: Sequence[Channel],
        ledger: Ledger | None = None,
        *,
        window: timedelta = DEFAULT_WINDOW,
        min_severity: str = "info",
        audit: Any = None,
        log: Callable[[str], None] | None = None,
        outbox: Any = None,
    ):
        if min_severity not in SEVERITIES:
            raise AlertConfigError(f"{ENV_MIN_SEVERITY}: expected one of {', '.join(SEVERITIES)}, got {min_severity!r}")
        self.channels = list(channels)
        self.ledger = ledger if ledger is not None else MemoryLedger()
        retention = getattr(self.ledger, "retention", None)
        if retention is not None and retention < window:
            raise AlertConfigError(f"{ENV_RETENTION_DAYS}: the ledger retention ({retention}) is shorter "
                                   f"than the dedup window ({window}); pruning would re-send alerts")
        self.window = window
        self.min_severity = min_severity
        self.audit = audit
        self._log = log or log_warning
        self.outbox = outbox  # qlrf.events.outbox.Outbox: each raised alert also goes out as alert.raised

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        url: str | None = None,
        audit: Any = None,
        log: Callable[[str], None] | None = None,
        channels: Sequence[Channel] | None = None,
        outbox: Any = None,
    ) -> Dispatcher:
        """Channels and settings from the environment (table in :mod:`qlrf.alerts`); the ledger in the task DB."""
        env = environ(env)
        chosen = channels_from_env(env) if channels is None else list(channels)
        window = timedelta(hours=env_number(env, ENV_DEDUP_HOURS, 6.0, minimum=0.0))
        retention = _retention(env, window)
        # With no channel too: the alerts are kept in the ledger (channel "none") rather than dropped.
        ledger: Ledger = AlertLedger(url, retention=retention)
        return cls(
            chosen,
            ledger,
            window=window,
            min_severity=(env.get(ENV_MIN_SEVERITY) or "info").strip().lower(),
            audit=audit,
            log=log,
            outbox=outbox,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.channels)

    def send(self, alert: Alert, now: datetime | None = None) -> DispatchResult:
        """Deliver `alert`; never raises for a channel's failure (it is logged and reported)."""
        now = utc(now) or datetime.now(UTC)
        result = DispatchResult(alert.key)
        if not severity_at_least(alert.severity, self.min_severity):
            result.dropped = True
            return result
        if not self.channels:
            return self._keep(alert, now, result)
        for channel in self.channels:
            try:
                last = self.ledger.last_sent(alert.key, channel.name)
            except Exception as exc:  # noqa: BLE001 - a ledger hiccup must not silence alerts
                self._log(f"alert {alert.key}: dedup ledger unreadable ({type(exc).__name__}); sending anyway")
                last = None
            if last is not None and now - last < self.window:
                result.suppressed.append(channel.name)
                continue
            try:
                channel.send(alert)
            except Exception as exc:  # noqa: BLE001 - one channel never stops the others
                text = str(exc) if isinstance(exc, ChannelError) else f"{channel.describe()}: {type(exc).__name__}"
                result.failed[channel.name] = text
                self._log(f"alert {alert.key} ({alert.kind}) not delivered: {text}")
                continue
            result.sent.append(channel.name)
            try:
                self.ledger.mark(alert.key, channel.name, alert.kind, now, alert.severity, cut(alert.title, 500))
            except Exception as exc:  # noqa: BLE001
                self._log(f"alert {alert.key}: delivered to {channel.name} but not recorded ({type(exc).__name__})")
        if result.sent:
            self._prune(alert.key, now)
        if result.sent or result.failed:  # not when every channel suppressed it inside the dedup window
            self._announce(alert, now)
        if self.audit is not None and (result.sent or result.failed):
            try:
                self.audit.append("alert", "system:alerts", cut(alert.key, 200), {
                    "kind": alert.kind, "severity": alert.severity, "title": alert.title,
                    "sent": result.sent, "failed": result.failed,
                })
            except Exception as exc:  # noqa: BLE001
                self._log(f"alert {alert.key}: audit record not written ({type(exc).__name__}: {exc})")
        return result

    def _keep(self, alert: Alert, now: datetime, result: DispatchResult) -> DispatchResult:
        """No channel: record the alert under channel "none" so it is listed, never lost silently."""
        try:
            last = self.ledger.last_sent(alert.key, NO_CHANNEL)
            self.ledger.mark(alert.key, NO_CHANNEL, alert.kind, now, alert.severity, cut(alert.title, 500))
        except Exception as exc:  # noqa: BLE001 - the caller's work (a sensor tick) must go on
            self._log(f"alert {alert.key} ({alert.severity}) not kept: no channel configured and the ledger "
                      f"is unwritable ({type(exc).__name__})")
            return result
        result.kept = True
        self._prune(alert.key, now)
        if last is None or now - last >= self.window:  # once per key and dedup window, as a channel would send it
            self._announce(alert, now)
        return result

    def _announce(self, alert: Alert, now: datetime) -> None:
        """alert.raised to the outbox (callers announce once per key and dedup window)."""
        if self.outbox is None:
            return
        from qlrf.events.emit import alert_raised

        try:
            self.outbox.write(alert_raised(alert.key, alert.kind, alert.severity, alert.title, dict(alert.fields or {}), now))
        except Exception as exc:  # noqa: BLE001 - the alert itself went out (or was kept); the event is extra
            self._log(f"alert {alert.key}: alert.raised not written to the outbox ({type(exc).__name__}: {exc})")

    def _prune(self, key: str, now: datetime) -> None:
        """Records older than the retention go each time new ones are written: the table stays bounded."""
        try:
            self.ledger.prune(now)
        except Exception as exc:  # noqa: BLE001 - a stale row only costs space, never a lost alert
            self._log(f"alert {key}: ledger not pruned ({type(exc).__name__})")

    def send_all(self, alerts: Iterable[Alert], now: datetime | None = None) -> list[DispatchResult]:
        return [self.send(a, now) for a in alerts]


def log_warning(message: str) -> None:
    log.warning(message)


def _retention(env: Mapping[str, str], window: timedelta) -> timedelta:
    """QLRF_ALERT_RETENTION_DAYS when set; else the default, stretched to the window if that is longer."""
    if (env.get(ENV_RETENTION_DAYS) or "").strip():
        return timedelta(days=env_number(env, ENV_RETENTION_DAYS, 30.0, minimum=0.001))
    return max(DEFAULT_RETENTION, window)


__all__ = ["DEFAULT_WINDOW", "DispatchResult", "Dispatcher", "log_warning"]
