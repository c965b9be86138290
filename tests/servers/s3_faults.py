"""An S3 fault proxy in front of moto: the warehouse's real pyarrow S3 client, real HTTP, chosen failures.

`S3FaultProxy(moto_url)` forwards every request to moto except those a rule answers: a rule sees the
recorded request (method, path, headers) and returns None (forward), DROP (close the connection
without an answer: the store is unreachable mid-request) or (status, S3 error code) answered here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from tests.fakes.base import RecordedRequest
from tests.servers.moto_server import FaultProxy, _ProxyHandler

DROP = "drop"
S3Rule = Callable[[RecordedRequest], "str | tuple[int, str] | None"]


def s3_error(code: str, message: str) -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
            "<RequestId>qlrf-s3-fault</RequestId></Error>")


def is_staging_put(rec: RecordedRequest) -> bool:
    return (rec.method == "PUT" and "/_staging/" in rec.path and not rec.path.endswith("/")
            and "x-amz-copy-source" not in rec.headers)


def is_copy(rec: RecordedRequest) -> bool:
    return rec.method == "PUT" and "x-amz-copy-source" in rec.headers


class S3FaultProxy(FaultProxy):
    """FaultProxy's forwarding, with S3-shaped rules; `answered` counts what the rules took."""

    thread_name = "s3-fault-proxy"

    def __init__(self, upstream: str, rules: list[S3Rule] | None = None) -> None:
        super().__init__(upstream)
        self.s3_rules: list[S3Rule] = list(rules or [])
        self.taken: list[tuple[str, str, str]] = []  # (method, path, answer)
        self._taken_lock = threading.Lock()

    def decide(self, rec: RecordedRequest) -> str | tuple[int, str] | None:
        for rule in self.s3_rules:
            answer = rule(rec)
            if answer is not None:
                with self._taken_lock:
                    self.taken.append((rec.method, rec.path, answer if answer == DROP else str(answer[0])))
                return answer
        return None


class _S3ProxyHandler(_ProxyHandler):
    fake: S3FaultProxy

    def _handle(self, method: str) -> None:
        """The base reads Content-Length bodies; the AWS C++ SDK streams uploads as chunked aws-chunked
        bodies with a checksum trailer, so those are read raw (chunks and trailer) and forwarded as sent."""
        if (self.headers.get("Transfer-Encoding") or "").lower() != "chunked":
            return super()._handle(method)
        raw = bytearray()
        while True:
            line = self.rfile.readline()
            raw += line
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailer lines, then the blank line that ends the body
                    trailer = self.rfile.readline()
                    raw += trailer
                    if trailer in (b"\r\n", b"\n", b""):
                        break
                break
            raw += self.rfile.read(size + 2)
        split = urlsplit(self.path)
        self.rec = RecordedRequest(method, split.path, parse_qs(split.query, keep_blank_values=True),
                                   {k.lower(): v for k, v in self.headers.items()}, bytes(raw))
        self.fake.record(self.rec)
        self.route(self.rec)
        return None

    def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming; S3 HeadObject is how pyarrow stats a key
        self._handle("HEAD")

    def route(self, rec: RecordedRequest) -> None:
        answer = self.fake.decide(rec)
        if answer == DROP:
            return self.drop()
        if answer is not None:
            status, code = answer
            return self.send_bytes(status, s3_error(code, "injected by the test").encode(), content_type="application/xml")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "expect")}
        status, upstream_headers, payload = self.fake.forward(rec, self.path, headers)
        if rec.method == "HEAD":  # no body, but the object's Content-Length is the answer (its size)
            self.rec.status = status
            self.send_response(status)
            for name, value in upstream_headers:
                if name.lower() not in ("connection", "transfer-encoding", "server", "date"):
                    self.send_header(name, value)
            self.end_headers()
            return None
        skip = ("connection", "transfer-encoding", "content-length", "server", "date", "content-type")
        passed = {k: v for k, v in upstream_headers if k.lower() not in skip}
        content_type = next((v for k, v in upstream_headers if k.lower() == "content-type"), "application/xml")
        return self.send_bytes(status, payload, passed, content_type=content_type)


S3FaultProxy.handler = _S3ProxyHandler


def times(rule: Callable[[RecordedRequest], bool], answer: str | tuple[int, str], count: int | None) -> S3Rule:
    """`answer` the first `count` requests matching `rule` (None: all of them), forward the rest."""
    left = [count]
    lock = threading.Lock()

    def decide(rec: RecordedRequest) -> str | tuple[int, str] | None:
        if not rule(rec):
            return None
        with lock:
            if left[0] is not None:
                if left[0] <= 0:
                    return None
                left[0] -= 1
        return answer

    return decide
