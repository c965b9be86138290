"""Where alerts go: a generic JSON webhook, a Slack-compatible webhook and SMTP email.

Each channel knows only how to deliver one alert; deduplication and fan-out are the dispatcher's
(:mod:`qlrf.alerts.dispatch`). Channels describe themselves by kind and host and scrub every
configured secret from their errors (the webhook URL's path and query included: a Slack webhook's
path is its token), because those texts end up in logs, the audit trail and other alerts.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol
from urllib.parse import urlsplit

from qlrf.alerts.model import SOURCE, Alert, AlertConfigError, cut, env_number
from qlrf.envparse import environ, redact_secrets, scrub_url

ENV_WEBHOOK_URL = "QLRF_ALERT_WEBHOOK_URL"
ENV_WEBHOOK_TOKEN = "QLRF_ALERT_WEBHOOK_TOKEN"
ENV_SLACK_URL = "QLRF_ALERT_SLACK_URL"
ENV_TIMEOUT = "QLRF_ALERT_TIMEOUT"


class ChannelError(RuntimeError):
    """A channel could not deliver; the message holds no secret."""


class Channel(Protocol):
    name: str  # the ledger's channel name: one delivery record per (key, name)

    def send(self, alert: Alert) -> None: ...

    def describe(self) -> str: ...


def _scrub(text: str, secrets: Iterable[str | None], url: str | None = None) -> str:
    """`text` without any configured secret; with `url`, without its path and query either: a webhook's
    path is its token, and http.client echoes the path alone (e.g. "URL can't contain control characters")."""
    return redact_secrets(scrub_url(text, url), secrets, mask="[redacted]")


def _error_text(exc: BaseException, secrets: Iterable[str | None], url: str | None = None) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}"
    elif isinstance(exc, urllib.error.URLError):
        text = f"unreachable: {exc.reason}"
    else:
        text = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return _scrub(text, secrets, url)[:300]


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
            raise ChannelError(f"{self.describe()}: {_error_text(exc, self._secrets, self.url)}") from None
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


class SlackChannel(_HttpChannel):
    """Slack-compatible incoming webhook: ``text`` (fallback, notifications) plus Block Kit ``blocks``."""

    name = "slack"
    label = "slack"

    def __init__(self, url: str, *, timeout: float = 10.0):
        super().__init__(url, timeout=timeout, variable=ENV_SLACK_URL)

    def body(self, alert: Alert) -> dict[str, Any]:
        headline = f"{SLACK_EMOJI[alert.severity]} [{alert.severity}] {alert.title}"
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": cut(f"[{alert.severity}] {alert.title}", 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(alert.text or alert.title, 3000)}},
        ]
        fields = [
            {"type": "mrkdwn", "text": cut(f"*{k}*\n{v}", 2000)} for k, v in list(alert.fields.items())[:10]
        ]
        if fields:
            blocks.append({"type": "section", "fields": fields})
        context = f"{SOURCE} · {alert.kind} · `{alert.key}`"
        if alert.link:
            context += f" · <{alert.link}|open>"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(context, 3000)}]})
        return {"text": cut(f"{headline}\n{alert.text}", 3000), "blocks": blocks}


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
        msg["Subject"] = cut(f"[qlrf {alert.severity}] {alert.title}", 200).replace("\n", " ")
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="qlrf.local")
        msg["X-QLRF-Alert-Key"] = cut(alert.key, 200).replace("\n", " ")
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


def channels_from_env(env: Mapping[str, str] | None = None) -> list[Channel]:
    """Every channel whose variables are set (see the module docstring); none when nothing is set."""
    env = environ(env)
    timeout = env_number(env, ENV_TIMEOUT, 10.0, minimum=0.1)
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


__all__ = [
    "Channel",
    "ChannelError",
    "EmailChannel",
    "SlackChannel",
    "WebhookChannel",
    "channels_from_env",
]
