"""The one loopback server every in-repo fake stands on.

A fake (ARM, GCE, OPA, OpenAI, an alert receiver, the moto fault proxy) should only say what its
routes answer and in which shapes. Everything else is the same for all of them and lives here:

* :class:`Loopback`: a threaded ``socketserver`` on 127.0.0.1 with a free port, served from a daemon
  thread; ``start``/``stop`` or ``with``. Non-HTTP fakes (the SMTP receiver) use it directly.
* :class:`HttpFake`: an HTTP/1.1 server on top (``disable_nagle_algorithm``: ~45 ms -> ~1 ms a call),
  optionally HTTPS with a throwaway CA (``trustme``; clients get :attr:`HttpFake.ca_path`), which
  records every request (:class:`RecordedRequest`) and hands it to the fake's handler.
* :class:`FaultRules`: "answer the first N calls of X with Y" (or every call while a rule stands).
  The base only keeps and counts the rules; each fake decides where in its checks to consult them
  and what the fault looks like in its protocol (an ARM 429, a GCE 503, a dropped connection ...).
"""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import ssl
import tempfile
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now: for servers that need one up front (moto, vcsim, dagster
    dev) and for "unreachable endpoint" tests. Fakes built here bind port 0 instead (no race)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# --- recorded requests ----------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the fake saw it, for assertions: what was asked and what was answered."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    raw: bytes = b""
    body: Any = None  # the parsed JSON body; None when empty or not JSON (see body_error)
    body_error: str | None = None  # why a non-empty body did not parse as JSON
    status: int = 0  # set before the answer is written: a client may look as soon as it has it
    scope: str | None = None  # what fault rules key on: a subscription, a project, a region ...

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    def param(self, name: str) -> str | None:
        """The first value of query parameter `name`."""
        return (self.query.get(name) or [None])[0]


def _parse_json(raw: bytes) -> tuple[Any, str | None]:
    if not raw.strip():
        return None, None
    try:
        return json.loads(raw), None
    except ValueError as exc:
        return None, str(exc)


# --- fault rules ----------------------------------------------------------------------------------

Match = Callable[[RecordedRequest], bool]


def any_request(_rec: RecordedRequest) -> bool:
    return True


def scope_is(scope: str) -> Match:
    """Requests about `scope` (compared case-insensitively); ``"*"`` matches every request."""
    wanted = scope.lower()
    return lambda rec: wanted == "*" or (rec.scope or "").lower() == wanted


@dataclass
class FaultRule:
    """Answer matching requests with fault `kind` (``times`` of them, or all while ``times`` is None)."""

    kind: str
    when: Match = any_request
    times: int | None = 1
    args: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    @property
    def spent(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def use(self) -> bool:
        """One use of this rule: False once ``times`` are spent. Not thread-safe on its own."""
        if self.spent:
            return False
        self.fired += 1
        return True

    def consume(self, rec: RecordedRequest) -> bool:
        """True (and one use gone) when this rule answers `rec`; not thread-safe on its own."""
        return self.when(rec) and self.use()


class FaultRules:
    """The standing fault rules of one fake, consulted in the order they were added."""

    def __init__(self) -> None:
        self._rules: dict[Hashable, FaultRule] = {}
        self._lock = threading.Lock()
        self._counter = 0

    def add(self, kind: str, /, *, when: Match = any_request, times: int | None = 1, key: Hashable | None = None,
            **args: Any) -> FaultRule:
        """A new rule; one added under an existing `key` replaces it (``fake.throttle(sub)`` twice)."""
        rule = FaultRule(kind, when, times, args)
        with self._lock:
            if key is None:
                self._counter += 1
                key = ("rule", self._counter)
            self._rules.pop(key, None)
            self._rules[key] = rule
        return rule

    def remove(self, key: Hashable) -> None:
        with self._lock:
            self._rules.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, rec: RecordedRequest, *kinds: str) -> FaultRule | None:
        """The first live rule of one of `kinds` (any kind when none given) matching `rec`, used once."""
        with self._lock:
            for rule in self._rules.values():
                if (not kinds or rule.kind in kinds) and rule.consume(rec):
                    return rule
        return None


# --- the server -----------------------------------------------------------------------------------


class Loopback:
    """A threaded socketserver on a free loopback port, served from a daemon thread."""

    thread_name: ClassVar[str] = "loopback"

    def __init__(self, host: str = LOOPBACK) -> None:
        self.host = host
        self._server: socketserver.BaseServer | None = None
        self._thread: threading.Thread | None = None

    def make_server(self) -> socketserver.BaseServer:
        raise NotImplementedError

    def start(self) -> Self:
        self._server = self.make_server()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, f"start() the {self.thread_name} first"
        return self._server.server_address[1]  # type: ignore[attr-defined]


class QuietThreadingTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up or rejects the certificate is the test's business, not noise


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: HttpFake,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.fake = fake
        self.ssl_context = ssl_context
        super().__init__(addr, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        if self.ssl_context is None:
            return sock, addr
        # the handshake happens in the worker thread (FakeHandler.setup): a slow client never blocks accept
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # as QuietThreadingTCPServer


class FakeHandler(BaseHTTPRequestHandler):
    """Reads and records each request, then calls :meth:`route`; fakes override ``route`` only."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HttpServer
    rec: RecordedRequest

    @property
    def fake(self) -> Any:
        return self.server.fake

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def setup(self) -> None:
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        body, error = _parse_json(raw)
        self.rec = RecordedRequest(method, split.path, parse_qs(split.query, keep_blank_values=True),
                                   {k.lower(): v for k, v in self.headers.items()}, raw, body, error)
        self.fake.record(self.rec)
        self.route(self.rec)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def route(self, rec: RecordedRequest) -> None:
        self.send_json(404, {"error": f"no route for {rec.method} {rec.path}"})

    # --- answers ----------------------------------------------------------------------------------

    def send_bytes(self, status: int, payload: bytes, headers: dict[str, str] | None = None,
                   content_type: str = "application/json") -> None:
        self.rec.status = status
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout under test)
            self.close_connection = True

    def send_json(self, status: int, doc: Any, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> None:
        payload = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        self.send_bytes(status, payload, headers, content_type)

    def drop(self) -> None:
        """Close the connection without an answer."""
        self.close_connection = True


class HttpFake(Loopback):
    """An HTTP(S) fake: a :class:`FakeHandler` subclass answers, this object records and holds faults."""

    handler: ClassVar[type[FakeHandler]] = FakeHandler
    thread_name: ClassVar[str] = "http-fake"

    def __init__(self, host: str = LOOPBACK, *, tls: bool = False) -> None:
        super().__init__(host)
        self.tls = tls
        self.faults = FaultRules()
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.ca_path: str | None = None

    # --- recording --------------------------------------------------------------------------------

    def record(self, rec: RecordedRequest) -> None:
        with self._requests_lock:
            self._requests.append(rec)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (a copy)."""
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """What a client is given; fakes whose API lives under a prefix override this."""
        return self.base_url

    def make_server(self) -> socketserver.BaseServer:
        return _HttpServer((self.host, 0), self.handler, self, self._ssl_context() if self.tls else None)

    def _ssl_context(self) -> ssl.SSLContext:
        import trustme

        ca = trustme.CA()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(self.host, "localhost").configure_cert(ctx)
        self._tmp = tempfile.TemporaryDirectory(prefix=f"rf-{self.thread_name}-")
        self.ca_path = str(Path(self._tmp.name) / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        return ctx

    def stop(self) -> None:
        super().stop()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None


__all__ = [
    "FakeHandler",
    "FaultRule",
    "FaultRules",
    "HttpFake",
    "Loopback",
    "QuietThreadingTCPServer",
    "RecordedRequest",
    "any_request",
    "free_port",
    "scope_is",
]
