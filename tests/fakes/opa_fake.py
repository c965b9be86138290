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
(close the connection without answering), ``delay`` (seconds before answering); they are rules of the
shared :class:`~tests.fakes.base.FaultRules`. Every request is recorded in ``requests``
(:class:`~tests.fakes.base.RecordedRequest`: method, path, query, headers, JSON body).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from regopy import Interpreter, RegoError
from regopy.rego_shared import rego_get_error

from tests.fakes.base import FakeHandler, HttpFake, RecordedRequest

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


class OpaFake(HttpFake):
    thread_name = "opa-fake"

    def __init__(
        self,
        policy_dir: Path | None = None,
        *,
        data: Mapping | None = None,
        modules: Mapping[str, str] | None = None,
        token: str | None = None,
    ):
        super().__init__()
        if modules is None:
            files = sorted(Path(policy_dir or POLICY_DIR).glob("*.rego"))
            modules = {f"policy/{f.name}": f.read_text() for f in files if not f.name.endswith("_test.rego")}
        self.modules: dict[str, str] = dict(modules)
        self.data = dict(data) if data else None
        self.token = token
        self.delay = 0.0
        self._lock = threading.Lock()
        self._compile()

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
        self.faults.add("status", times=times, status=status, message=message)

    def undefined_next(self, times: int = 1) -> None:
        self.faults.add("undefined", times=times)

    def garbage_next(self, times: int = 1) -> None:
        self.faults.add("garbage", times=times)

    def drop_next(self, times: int = 1) -> None:
        self.faults.add("drop", times=times)


class _OpaHandler(FakeHandler):
    fake: OpaFake

    def _error(self, status: int, code: str, message: str) -> None:
        self.send_json(status, {"code": code, "message": message})

    def _authorised(self) -> bool:
        token = self.fake.token
        if token and self.headers.get("Authorization") != f"Bearer {token}":
            self._error(401, "unauthorized", "missing or invalid bearer token")
            return False
        return True

    def route(self, rec: RecordedRequest) -> None:
        if rec.method == "GET" and rec.path == "/health":
            return self.send_json(200, {})
        if rec.method in ("GET", "POST") and rec.path.startswith("/v1/data/"):
            return self._data(rec)
        if rec.method == "PUT":
            return self._put_policy(rec)
        return self._error(404, "resource_not_found", f"{rec.path} is not served by the OPA fake")

    def _data(self, rec: RecordedRequest) -> None:
        if rec.body_error is not None:
            return self._error(400, "invalid_parameter", f"body contains malformed input document: {rec.body_error}")
        if not self._authorised():
            return None
        body = rec.body
        if body is not None and not isinstance(body, dict):
            return self._error(400, "invalid_parameter", "body must be an object")
        fault = self.fake.faults.take(rec)
        if self.fake.delay:
            time.sleep(self.fake.delay)
        if fault is not None:
            return self._fault(fault.kind, fault.args)
        has_input = isinstance(body, dict) and "input" in body
        try:
            defined, doc = self.fake.evaluate(rec.path.removeprefix("/v1/data"), body.get("input") if has_input else None,
                                              has_input)
        except (RuntimeError, RegoError) as exc:
            return self._error(500, "internal_error", str(exc))
        answer: dict[str, Any] = {"decision_id": str(uuid.uuid4())}
        if defined:
            answer["result"] = doc
        return self.send_json(200, answer)

    def _fault(self, kind: str, args: dict[str, Any]) -> None:
        if kind == "status":
            return self._error(args["status"], "internal_error", args["message"])
        if kind == "garbage":
            return self.send_bytes(200, b"<html>502 Bad Gateway</html>")
        if kind == "drop":
            return self.drop()
        return self.send_json(200, {"decision_id": str(uuid.uuid4())})  # undefined

    def _put_policy(self, rec: RecordedRequest) -> None:
        if not self._authorised():
            return None
        if not rec.path.startswith("/v1/policies/"):
            return self._error(404, "resource_not_found", rec.path)
        try:
            self.fake.put_policy(rec.path.removeprefix("/v1/policies/"), rec.raw.decode())
        except (RegoError, UnicodeDecodeError) as exc:
            return self._error(400, "invalid_parameter", f"error(s) occurred while compiling module(s): {exc}")
        return self.send_json(200, {})


OpaFake.handler = _OpaHandler


@contextlib.contextmanager
def start_opa_fake(policy_dir: Path | None = None, **kwargs: Any) -> Iterator[OpaFake]:
    fake = OpaFake(policy_dir, **kwargs)
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()
