"""Alerts: run failures, drift-threshold breaches, revoked images, approvals about to expire.

Plain Python (no Dagster): the sensors in ``sensors/`` build :class:`Alert` objects and hand them to
a :class:`Dispatcher`, which sends each to every configured channel:

* generic JSON webhook: ``POST`` of ``Alert.payload()`` (``Content-Type: application/json``),
  optionally with a bearer token;
* Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, Teams workflows):
  ``{"text": ..., "blocks": [...]}``;
* SMTP email (``smtplib``): STARTTLS (default), implicit TLS or plain, login when a user is set.

Deduplication: an alert's ``key`` names the thing it is about (``run_failure|<run id>``,
``approval_expiring|<task id>`` ...). Once a channel has delivered a key, the same key is not sent
to that channel again within the dedup window. Deliveries are recorded in the ``rf_alert_ledger``
table of the remediation database (``qlrf.db.engine_for``: SQLite under ``QLRF_HOME`` or
``QLRF_POSTGRES_URL``), so the window survives restarts and is shared by every process. A channel
that fails is logged (and retried on the next occurrence of the key); it never stops the others.

Secrets (webhook URLs carry their key in the path, tokens, the SMTP password) are never logged,
never put in an exception message of this module and never written to the audit log: channels
describe themselves by kind and host only, and error texts are scrubbed of every configured secret.

Configuration (environment, read when :func:`channels_from_env` / :meth:`Dispatcher.from_env` is
called, never at import):

=============================  ==========================================================  ===========
variable                       meaning                                                     default
=============================  ==========================================================  ===========
QLRF_ALERT_WEBHOOK_URL         generic JSON webhook (http/https); secret if it has a key    unset: off
QLRF_ALERT_WEBHOOK_TOKEN       bearer token sent to the JSON webhook (secret)               none
QLRF_ALERT_SLACK_URL           Slack-compatible incoming-webhook URL (secret)               unset: off
QLRF_SMTP_HOST                 SMTP server; email is on when host, from and to are set      unset: off
QLRF_SMTP_PORT                 SMTP port                                                    587 (465 for ssl)
QLRF_SMTP_TLS                  ``starttls`` | ``ssl`` (implicit TLS) | ``none``              starttls
QLRF_SMTP_USER                 login user (no login when unset)                             none
QLRF_SMTP_PASSWORD             login password (secret)                                      none
QLRF_SMTP_FROM                 sender address                                               required
QLRF_SMTP_TO                   recipients, comma-separated                                  required
QLRF_ALERT_DEDUP_HOURS         window in which a key is not re-sent to a channel            6
QLRF_ALERT_MIN_SEVERITY        ``info`` | ``warning`` | ``critical``: lower ones are dropped  info
QLRF_ALERT_TIMEOUT             seconds per delivery attempt                                 10
QLRF_DAGSTER_UI_URL            base URL of the Dagster UI, for links to failed runs         none
=============================  ==========================================================  ===========
"""

from __future__ import annotations

import hashlib
import json
import logging
import smtplib
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, Text, delete, insert, select

from qlrf.db import engine_for, read_tx, utc, write_tx
from qlrf.envparse import environ

SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
ENV_WEBHOOK_URL = "QLRF_ALERT_WEBHOOK_URL"
ENV_WEBHOOK_TOKEN = "QLRF_ALERT_WEBHOOK_TOKEN"
ENV_SLACK_URL = "QLRF_ALERT_SLACK_URL"
ENV_DEDUP_HOURS = "QLRF_ALERT_DEDUP_HOURS"
ENV_MIN_SEVERITY = "QLRF_ALERT_MIN_SEVERITY"
ENV_TIMEOUT = "QLRF_ALERT_TIMEOUT"
ENV_DAGSTER_UI_URL = "QLRF_DAGSTER_UI_URL"
DEFAULT_WINDOW = timedelta(hours=6)
SOURCE = "resilience-fabric"

log = logging.getLogger(__name__)


class AlertConfigError(ValueError):
    """An unusable alert setting; the message names the variable (never its secret value)."""


class ChannelError(RuntimeError):
    """A channel could not deliver; the message holds no secret."""


# --- the alert ---------------------------------------------------------------------------------------


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


# --- channels ----------------------------------------------------------------------------------------


class Channel(Protocol):
    name: str  # the ledger's channel name: one delivery record per (key, name)

    def send(self, alert: Alert) -> None: ...

    def describe(self) -> str: ...


def _scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def _error_text(exc: BaseException, secrets: Iterable[str | None]) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        text = f"unreachable: {exc.reason}"
    else:
        text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return _scrub(text, secrets)[:300]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured: urllib would turn the POST into a GET."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        return None


def _check_http_url(url: str, variable: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        raise AlertConfigError(f"{variable}: not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AlertConfigError(f"{variable}: expected an http(s) URL with a host")
    return url


class _HttpChannel:
    name = "http"
    label = "http"

    def __init__(self, url: str, *, timeout: float = 10.0, headers: Mapping[str, str] | None = None,
                 variable: str = "url", secrets: Sequence[str | None] = ()):
        self.url = _check_http_url(url, variable)
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "User-Agent": f"{SOURCE}-alerts", **(headers or {})}
        self._secrets = (url, *secrets, *(headers or {}).values())
        self._opener = urllib.request.build_opener(_NoRedirect)

    def describe(self) -> str:
        return f"{self.label}({urlsplit(self.url).hostname})"

    def body(self, alert: Alert) -> dict[str, Any]:
        raise NotImplementedError

    def send(self, alert: Alert) -> None:
        data = json.dumps(self.body(alert), ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=data, headers=self.headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(4096)
                status = response.status
        except Exception as exc:  # noqa: BLE001 - reported without the URL
            raise ChannelError(f"{self.describe()}: {_error_text(exc, self._secrets)}") from None
        if not 200 <= status < 300:
            raise ChannelError(f"{self.describe()}: HTTP {status}")


class WebhookChannel(_HttpChannel):
    """Generic JSON webhook: POSTs :meth:`Alert.payload`."""

    name = "webhook"
    label = "webhook"

    def __init__(self, url: str, *, token: str | None = None, timeout: float = 10.0):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        super().__init__(url, timeout=timeout, headers=headers, variable=ENV_WEBHOOK_URL, secrets=(token,))

    def body(self, alert: Alert) -> dict[str, Any]:
        return alert.payload()


SLACK_EMOJI = {"info": ":information_source:", "warning": ":warning:", "critical": ":rotating_light:"}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class SlackChannel(_HttpChannel):
    """Slack-compatible incoming webhook: ``text`` (fallback, notifications) plus Block Kit ``blocks``."""

    name = "slack"
    label = "slack"

    def __init__(self, url: str, *, timeout: float = 10.0):
        super().__init__(url, timeout=timeout, variable=ENV_SLACK_URL)

    def body(self, alert: Alert) -> dict[str, Any]:
        headline = f"{SLACK_EMOJI[alert.severity]} [{alert.severity}] {alert.title}"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": _cut(f"[{alert.severity}] {alert.title}", 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(alert.text or alert.title, 3000)}},
        ]
        fields = [
            {"type": "mrkdwn", "text": _cut(f"*{k}*\n{v}", 2000)} for k, v in list(alert.fields.items())[:10]
        ]
        if fields:
            blocks.append({"type": "section", "fields": fields})
        context = f"{SOURCE} · {alert.kind} · `{alert.key}`"
        if alert.link:
            context += f" · <{alert.link}|open>"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(context, 3000)}]})
        return {"text": _cut(f"{headline}\n{alert.text}", 3000), "blocks": blocks}


class EmailChannel:
    """SMTP email through smtplib; ``tls`` is ``starttls`` (default), ``ssl`` or ``none``."""

    name = "email"

    def __init__(
        self,
        host: str,
        sender: str,
        recipients: Sequence[str],
        *,
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        tls: str = "starttls",
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ):
        if tls not in ("starttls", "ssl", "none"):
            raise AlertConfigError(f"QLRF_SMTP_TLS: expected starttls, ssl or none, got {tls!r}")
        if not host or not sender or not recipients:
            raise AlertConfigError("email alerts need QLRF_SMTP_HOST, QLRF_SMTP_FROM and QLRF_SMTP_TO")
        self.host, self.sender, self.recipients = host, sender, list(recipients)
        self.port = port or (465 if tls == "ssl" else 587)
        self.user, self._password, self.tls, self.timeout = user, password, tls, timeout
        self._ssl = ssl_context

    def describe(self) -> str:
        return f"email({self.host}:{self.port}, {len(self.recipients)} recipient(s))"

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = _cut(f"[qlrf {alert.severity}] {alert.title}", 200).replace("\n", " ")
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="qlrf.local")
        msg["X-QLRF-Alert-Key"] = _cut(alert.key, 200).replace("\n", " ")
        lines = [alert.text, ""]
        lines += [f"{k}: {v}" for k, v in alert.fields.items()]
        if alert.link:
            lines += ["", alert.link]
        lines += ["", f"-- {SOURCE} ({alert.kind}, severity {alert.severity}, key {alert.key})"]
        msg.set_content("\n".join(lines))
        return msg

    def send(self, alert: Alert) -> None:
        secrets = (self._password,)
        context = self._ssl or ssl.create_default_context()
        try:
            if self.tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                smtp.ehlo()
                if self.tls == "starttls":
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if self.user:
                    smtp.login(self.user, self._password or "")
                smtp.send_message(self.message(alert))
        except Exception as exc:  # noqa: BLE001 - reported without credentials
            raise ChannelError(f"{self.describe()}: {_error_text(exc, secrets)}") from None


# --- the dedup ledger --------------------------------------------------------------------------------

_ledger_metadata = MetaData()
alert_ledger = Table(
    "rf_alert_ledger",
    _ledger_metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("key", Text, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
)
_created: set[int] = set()
_created_lock = threading.Lock()


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Ledger(Protocol):
    def last_sent(self, key: str, channel: str) -> datetime | None: ...

    def mark(self, key: str, channel: str, kind: str, at: datetime) -> None: ...


class AlertLedger:
    """When each (key, channel) was last delivered, in the remediation database (survives restarts)."""

    def __init__(self, url: str | None = None, engine: Engine | None = None):
        self.engine = engine or engine_for(url)
        with _created_lock:
            if id(self.engine) not in _created:
                _ledger_metadata.create_all(self.engine, checkfirst=True)
                _created.add(id(self.engine))

    def last_sent(self, key: str, channel: str) -> datetime | None:
        query = select(alert_ledger.c.sent_at).where(
            alert_ledger.c.key_hash == _key_hash(key), alert_ledger.c.channel == channel
        )
        with read_tx(self.engine) as conn:
            return utc(conn.execute(query).scalar())

    def mark(self, key: str, channel: str, kind: str, at: datetime) -> None:
        digest = _key_hash(key)
        with write_tx(self.engine) as conn:
            conn.execute(delete(alert_ledger).where(alert_ledger.c.key_hash == digest, alert_ledger.c.channel == channel))
            conn.execute(insert(alert_ledger).values(key_hash=digest, channel=channel, key=key, kind=kind, sent_at=at))

    def prune(self, before: datetime) -> int:
        """Forget deliveries older than `before` (they can no longer suppress anything)."""
        with write_tx(self.engine) as conn:
            return conn.execute(delete(alert_ledger).where(alert_ledger.c.sent_at < before)).rowcount or 0


class MemoryLedger:
    """A ledger that forgets on restart (tests, benchmarks)."""

    def __init__(self) -> None:
        self._sent: dict[tuple[str, str], datetime] = {}

    def last_sent(self, key: str, channel: str) -> datetime | None:
        return self._sent.get((key, channel))

    def mark(self, key: str, channel: str, kind: str, at: datetime) -> None:
        self._sent[(key, channel)] = at


# --- dispatch ----------------------------------------------------------------------------------------


@dataclass
class DispatchResult:
    key: str
    sent: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)  # delivered within the window already
    failed: dict[str, str] = field(default_factory=dict)  # channel -> error (no secrets)
    dropped: bool = False  # below the minimum severity

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
    ):
        if min_severity not in SEVERITIES:
            raise AlertConfigError(f"{ENV_MIN_SEVERITY}: expected one of {', '.join(SEVERITIES)}, got {min_severity!r}")
        self.channels = list(channels)
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self.window = window
        self.min_severity = min_severity
        self.audit = audit
        self._log = log or log_warning

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        url: str | None = None,
        audit: Any = None,
        log: Callable[[str], None] | None = None,
        channels: Sequence[Channel] | None = None,
    ) -> Dispatcher:
        """Channels and settings from the environment (module docstring); the ledger in the task DB."""
        env = environ(env)
        chosen = channels_from_env(env) if channels is None else list(channels)
        ledger: Ledger = AlertLedger(url) if chosen else MemoryLedger()  # no channel: touch no database
        return cls(
            chosen,
            ledger,
            window=timedelta(hours=_float(env, ENV_DEDUP_HOURS, 6.0, minimum=0.0)),
            min_severity=(env.get(ENV_MIN_SEVERITY) or "info").strip().lower(),
            audit=audit,
            log=log,
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
                self.ledger.mark(alert.key, channel.name, alert.kind, now)
            except Exception as exc:  # noqa: BLE001
                self._log(f"alert {alert.key}: delivered to {channel.name} but not recorded ({type(exc).__name__})")
        if self.audit is not None and (result.sent or result.failed):
            try:
                self.audit.append("alert", "system:alerts", _cut(alert.key, 200), {
                    "kind": alert.kind, "severity": alert.severity, "title": alert.title,
                    "sent": result.sent, "failed": result.failed,
                })
            except Exception as exc:  # noqa: BLE001
                self._log(f"alert {alert.key}: audit record not written ({type(exc).__name__}: {exc})")
        return result

    def send_all(self, alerts: Iterable[Alert], now: datetime | None = None) -> list[DispatchResult]:
        return [self.send(a, now) for a in alerts]


def log_warning(message: str) -> None:
    log.warning(message)


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
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


def channels_from_env(env: Mapping[str, str] | None = None) -> list[Channel]:
    """Every channel whose variables are set (see the module docstring); none when nothing is set."""
    env = environ(env)
    timeout = _float(env, ENV_TIMEOUT, 10.0, minimum=0.1)
    channels: list[Channel] = []
    if env.get(ENV_WEBHOOK_URL):
        channels.append(WebhookChannel(env[ENV_WEBHOOK_URL], token=env.get(ENV_WEBHOOK_TOKEN) or None, timeout=timeout))
    if env.get(ENV_SLACK_URL):
        channels.append(SlackChannel(env[ENV_SLACK_URL], timeout=timeout))
    host = (env.get("QLRF_SMTP_HOST") or "").strip()
    if host:
        recipients = [r.strip() for r in (env.get("QLRF_SMTP_TO") or "").split(",") if r.strip()]
        port_text = (env.get("QLRF_SMTP_PORT") or "").strip()
        try:
            port = int(port_text) if port_text else None
        except ValueError:
            raise AlertConfigError(f"QLRF_SMTP_PORT={port_text!r}: expected a port number") from None
        channels.append(
            EmailChannel(
                host,
                (env.get("QLRF_SMTP_FROM") or "").strip(),
                recipients,
                port=port,
                user=(env.get("QLRF_SMTP_USER") or "").strip() or None,
                password=env.get("QLRF_SMTP_PASSWORD") or None,
                tls=(env.get("QLRF_SMTP_TLS") or "starttls").strip().lower(),
                timeout=timeout,
            )
        )
    return channels


def run_link(run_id: str, env: Mapping[str, str] | None = None) -> str | None:
    """The Dagster UI page of a run when ``QLRF_DAGSTER_UI_URL`` is set."""
    base = (environ(env).get(ENV_DAGSTER_UI_URL) or "").rstrip("/")
    return f"{base}/runs/{run_id}" if base else None


__all__ = [
    "SEVERITIES",
    "Alert",
    "AlertConfigError",
    "AlertLedger",
    "Channel",
    "ChannelError",
    "DispatchResult",
    "Dispatcher",
    "EmailChannel",
    "MemoryLedger",
    "SlackChannel",
    "WebhookChannel",
    "channels_from_env",
    "run_link",
    "severity_at_least",
]
