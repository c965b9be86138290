"""The remote engine: OPA's REST data API (``POST {url}/v1/data/<path>`` with ``{"input": ...}``).

Failures raise RemoteError with a typed outcome (unreachable, timeout, error answer), so the gate
turns them into fail-closed decisions nobody has to parse.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

from qlrf.remediation.gate.decision import GateFailure, Outcome, strict_json
from qlrf.remediation.gate.modules import DECISION_PATH

ENV_OPA_URL = "QLRF_OPA_URL"
ENV_OPA_TOKEN = "QLRF_OPA_TOKEN"
_INT64 = (-(2**63), 2**63 - 1)


class RemoteError(GateFailure):
    """The remote OPA did not answer with a decision (HTTP error, unreachable, bad body)."""

    outcome = Outcome.REMOTE_ERROR


def json_input(request: Any) -> Any:
    """The request as plain JSON values, checked for what rego-cpp's input conversion gets wrong.

    Integers outside int64 would silently wrap (2**64 + 1 becomes 1) and strings are cut at a NUL
    byte, so big integers become floats (same order of magnitude, as OPA compares them) and a NUL
    is refused. Non-JSON values (NaN, objects) raise ValueError/TypeError.
    """
    doc = json.loads(json.dumps(request, allow_nan=False))

    def fix(value: Any) -> Any:
        if isinstance(value, bool) or value is None or isinstance(value, float):
            return value
        if isinstance(value, int):
            return value if _INT64[0] <= value <= _INT64[1] else float(value)
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("strings must not contain NUL characters")
            return value
        if isinstance(value, list):
            return [fix(v) for v in value]
        return {fix(k): fix(v) for k, v in value.items()}

    return fix(doc)


class RemoteEngine:
    """OPA's REST data API over a kept-alive HTTP(S) connection per thread."""

    source = "remote"

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        token: str | None = None,
        ca_file: str | None = None,
        path: str = DECISION_PATH,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"OPA url must be http(s)://host[:port], got {url!r}")
        self.url = url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname, parts.port
        self._path = f"{parts.path.rstrip('/')}/v1/data/{path.strip('/')}"
        self._timeout = timeout
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._ssl = ssl.create_default_context(cafile=ca_file) if self._https else None
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._https:
                conn = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout, context=self._ssl)
            else:
                conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._drop()

    def evaluate(self, request: Any) -> Any:
        body = json.dumps({"input": request}, allow_nan=False).encode()
        for attempt in (1, 2):
            reused = getattr(self._local, "conn", None) is not None
            conn = self._connection()
            try:
                conn.request("POST", self._path, body=body, headers=self._headers)
                resp = conn.getresponse()
                payload = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop()
                if reused and attempt == 1:
                    continue  # a kept-alive connection the server closed: the query is safe to repeat once
                raise RemoteError(f"OPA at {self.url} closed the connection: {exc}", Outcome.REMOTE_UNREACHABLE) from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                outcome = Outcome.REMOTE_TIMEOUT if isinstance(exc, TimeoutError) else Outcome.REMOTE_UNREACHABLE
                raise RemoteError(f"OPA at {self.url} unreachable: {type(exc).__name__}: {exc}", outcome) from exc
            break
        if resp.will_close:
            self._drop()
        if resp.status != 200:
            raise RemoteError(f"OPA HTTP {resp.status} {resp.reason}: {_opa_message(payload)}")
        try:
            doc = strict_json(payload)
        except ValueError as exc:
            raise RemoteError(f"OPA answered with a body that is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise RemoteError("OPA answered with a body that is not a JSON object")
        return doc.get("result")  # no "result": the decision is undefined


def _opa_message(payload: bytes) -> str:
    try:
        doc = json.loads(payload)
        return str(doc.get("message") or doc)[:300]
    except ValueError:
        return payload[:300].decode("utf-8", "replace")


__all__ = ["ENV_OPA_TOKEN", "ENV_OPA_URL", "RemoteEngine", "RemoteError", "json_input"]
