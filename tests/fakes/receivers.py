"""Loopback receivers for alert channels: an incoming webhook (JSON or Slack) and an SMTP server.

Both stand on :mod:`tests.fakes.base`: the webhook is an :class:`~tests.fakes.base.HttpFake` whose
recorded POSTs are the deliveries; the SMTP server is a plain :class:`~tests.fakes.base.Loopback`
speaking just enough RFC 5321 for ``smtplib``.
"""

from __future__ import annotations

import base64
import socketserver
from typing import Any

from tests.fakes.base import FakeHandler, HttpFake, Loopback, QuietThreadingTCPServer, RecordedRequest


class WebhookReceiver(HttpFake):
    """Answers every POST with ``status`` (or a 302 when ``redirect``); the POSTs are the deliveries."""

    thread_name = "webhook-receiver"

    def __init__(self) -> None:
        super().__init__()
        self.status = 200
        self.redirect = False

    @property
    def posts(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST"]


class _WebhookHandler(FakeHandler):
    fake: WebhookReceiver

    def route(self, rec: RecordedRequest) -> None:
        if self.fake.redirect:
            return self.send_bytes(302, b"", {"Location": "/elsewhere"})
        reply = b"ok" if self.fake.status == 200 else b"invalid_payload"
        return self.send_bytes(self.fake.status, reply, content_type="text/plain")


WebhookReceiver.handler = _WebhookHandler


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        receiver: SmtpReceiver = self.server.receiver  # type: ignore[attr-defined]
        sender, rcpts = None, []
        self.reply("220 loopback ESMTP ready")
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250-loopback")
                self.reply("250-AUTH PLAIN")
                self.reply("250 8BITMIME")
            elif verb == "AUTH":
                _, mech, blob = (line.split(" ") + [""])[:3]
                _, user, password = base64.b64decode(blob).decode().split("\x00")
                receiver.logins.append((user, password))
                self.reply("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                sender, rcpts = line.split(":", 1)[1].strip().strip("<>").split(">")[0], []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                chunks = []
                while True:
                    data = self.rfile.readline()
                    if data in (b".\r\n", b""):
                        break
                    chunks.append(data[1:] if data.startswith(b"..") else data)
                receiver.messages.append({"from": sender, "to": rcpts, "raw": b"".join(chunks)})
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class SmtpReceiver(Loopback):
    """What smtplib sent: ``messages`` (from, to, raw) and ``logins`` (user, password)."""

    thread_name = "smtp-receiver"

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self.logins: list[tuple[str, str]] = []

    def make_server(self) -> socketserver.BaseServer:
        server = QuietThreadingTCPServer((self.host, 0), _SmtpHandler)
        server.receiver = self  # type: ignore[attr-defined]
        return server
