"""Loopback HTTP fake of OPA's REST data API, evaluating the real policies with regopy.

Serves what the gate's remote mode uses, the way OPA answers it:

* ``POST /v1/data/{path}`` with ``{"input": ...}`` -> ``200 {"result": <document>, "decision_id": ...}``;
  an undefined document -> ``200 {"decision_id": ...}`` (no ``result``, as OPA);
* ``GET /v1/data/{path}`` (no input) likewise;
* ``PUT /v1/policies/{id}`` (Rego text) adds or replaces a module: ``400 {"code": "invalid_parameter",
  "message": ...}`` for a bad one; ``GET /health`` -> ``200 {}``;
* a malformed body -> ``400 {"code": "invalid_parameter", ...}``; with ``token`` set, a missing or
  wrong ``Authorization: Bearer`` -> ``401 {"code": "unauthorized", ...}``.

Each document path is compiled once into a regopy bundle (entry point = the path) and evaluated with
``query_bundle_entrypoint``. HTTP/1.1 keep-alive as OPA. Fault injection: ``fail_next(status, times)``,
``undefined_next(times)``, ``garbage_next(times)`` (200 with a non-JSON body), ``drop_next(times)``
(close the connection without answering), ``delay`` (seconds before answering). Every request is
recorded in ``requests`` as ``(method, path, parsed body or None)``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from regopy import Interpreter, RegoError
from regopy.rego_shared import rego_get_error

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


class OpaFake:
    def __init__(
        self,
        policy_dir: Path | None = None,
        *,
        data: Mapping | None = None,
        modules: Mapping[str, str] | None = None,
        token: str | None = None,
    ):
        if modules is None:
            files = sorted(Path(policy_dir or POLICY_DIR).glob("*.rego"))
            modules = {f"policy/{f.name}": f.read_text() for f in files if not f.name.endswith("_test.rego")}
        self.modules: dict[str, str] = dict(modules)
        self.data = dict(data) if data else None
        self.token = token
        self.requests: list[tuple[str, str, Any]] = []
        self.delay = 0.0
        self._faults: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._compile()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- evaluation -------------------------------------------------------------------------------

    def _compile(self, modules: Mapping[str, str] | None = None) -> None:
        interp = Interpreter()
        for name, source in (modules or self.modules).items():
            interp.add_module(name, source)  # RegoError for a bad module
        if self.data:
            interp.add_data(self.data)
        self._interp = interp
        self._bundles: dict[str, Any] = {}

    def evaluate(self, path: str, input_doc: Any = None, has_input: bool = False) -> tuple[bool, Any]:
        """(defined, document) for data path ``a/b/c``; raises RuntimeError on an evaluation error."""
        path = path.strip("/")
        with self._lock:
            bundle = self._bundles.get(path)
            if bundle is None:
                bundle = self._interp.build(None, [path])
                self._bundles[path] = bundle
            self._interp.set_input(input_doc if has_input else {})
            output = self._interp.query_bundle_entrypoint(bundle, path)
            if not output.ok():  # never str() an error output: regopy 1.5.2 crashes on it
                raise RuntimeError(rego_get_error(self._interp._impl) or "evaluation error")
            results = output.results
        exprs = results[0].expressions if results else []
        return (True, exprs[0]) if exprs else (False, None)

    def put_policy(self, policy_id: str, source: str) -> None:
        modules = dict(self.modules)
        modules[policy_id] = source
        with self._lock:
            self._compile(modules)  # raises before anything changes
            self.modules = modules

    # --- faults -----------------------------------------------------------------------------------

    def fail_next(self, status: int = 500, times: int = 1, message: str = "injected failure") -> None:
        self._faults += [("status", (status, message))] * times

    def undefined_next(self, times: int = 1) -> None:
        self._faults += [("undefined", None)] * times

    def garbage_next(self, times: int = 1) -> None:
        self._faults += [("garbage", None)] * times

    def drop_next(self, times: int = 1) -> None:
        self._faults += [("drop", None)] * times

    def _take_fault(self) -> tuple[str, Any] | None:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    # --- server -----------------------------------------------------------------------------------

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _send(self, status: int, doc: Any = None, raw: bytes | None = None) -> None:
                body = raw if raw is not None else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                self._send(status, {"code": code, "message": message})

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _authorised(self) -> bool:
                if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._error(401, "unauthorized", "missing or invalid bearer token")
                    return False
                return True

            def _data(self, method: str) -> None:
                raw = self._body() if method == "POST" else b""
                body = None
                if raw:
                    try:
                        body = json.loads(raw)
                    except ValueError as exc:
                        fake.requests.append((method, self.path, None))
                        return self._error(400, "invalid_parameter", f"body contains malformed input document: {exc}")
                fake.requests.append((method, self.path, body))
                if not self._authorised():
                    return None
                if body is not None and not isinstance(body, dict):
                    return self._error(400, "invalid_parameter", "body must be an object")
                fault = fake._take_fault()
                if fake.delay:
                    time.sleep(fake.delay)
                if fault:
                    kind, arg = fault
                    if kind == "status":
                        return self._error(arg[0], "internal_error", arg[1])
                    if kind == "garbage":
                        return self._send(200, raw=b"<html>502 Bad Gateway</html>")
                    if kind == "drop":
                        self.close_connection = True
                        return None
                    if kind == "undefined":
                        return self._send(200, {"decision_id": str(uuid.uuid4())})
                path = self.path.split("?", 1)[0].removeprefix("/v1/data")
                has_input = isinstance(body, dict) and "input" in body
                try:
                    defined, doc = fake.evaluate(path, body.get("input") if has_input else None, has_input)
                except (RuntimeError, RegoError) as exc:
                    return self._error(500, "internal_error", str(exc))
                answer = {"decision_id": str(uuid.uuid4())}
                if defined:
                    answer["result"] = doc
                return self._send(200, answer)

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                if self.path.startswith("/v1/data/"):
                    return self._data("POST")
                self._body()
                return self._error(404, "resource_not_found", f"{self.path} is not served by the OPA fake")

            def do_GET(self) -> None:  # noqa: N802
                if self.path.split("?", 1)[0] == "/health":
                    return self._send(200, {})
                if self.path.startswith("/v1/data/"):
                    return self._data("GET")
                return self._error(404, "resource_not_found", f"{self.path} is not served by the OPA fake")

            def do_PUT(self) -> None:  # noqa: N802
                raw = self._body()
                fake.requests.append(("PUT", self.path, None))
                if not self._authorised():
                    return None
                if not self.path.startswith("/v1/policies/"):
                    return self._error(404, "resource_not_found", self.path)
                try:
                    fake.put_policy(self.path.removeprefix("/v1/policies/"), raw.decode())
                except (RegoError, UnicodeDecodeError) as exc:
                    return self._error(400, "invalid_parameter", f"error(s) occurred while compiling module(s): {exc}")
                return self._send(200, {})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="opa-fake", daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@contextlib.contextmanager
def start_opa_fake(policy_dir: Path | None = None, **kwargs: Any) -> Iterator[OpaFake]:
    fake = OpaFake(policy_dir, **kwargs)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
