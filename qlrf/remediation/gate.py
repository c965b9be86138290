"""The action gate: every action the remediation loop (or an AI task) takes is decided by Rego.

Policies live in ``policy/*.rego`` (Rego v1), their tests in ``policy/*_test.rego``. The gate
evaluates ``data.qlrf.gate.decision`` either embedded, with regopy (rego-cpp) compiled once into a
bundle, or remotely, against an OPA server's REST data API
(``POST {url}/v1/data/qlrf/gate/decision`` with ``{"input": ...}`` -> ``{"result": ...}``).
Anything but a well-formed decision is a deny: an undefined decision, a malformed one, an HTTP
error, an unreachable server, an evaluation error, an input that is not JSON.

Input: one action request (a JSON object)
-----------------------------------------
==========================  ===========================================================  ==========
field                       meaning                                                      required
==========================  ===========================================================  ==========
action                      ``plan`` (read-only: propose a patch plan), ``execute_wave``  always
                            (change the machines of one wave), ``rollback`` (restore the
                            previous image / launch-template version after a failed
                            health gate)
environment                 ``dev`` | ``staging`` | ``prod``                              always
autonomy_mode               the environment's mode: ``plan_only`` | ``canary_only`` |     always
                            ``full_auto``
risk_level                  ``low`` | ``medium`` | ``high`` | ``critical``                always
plan_hash                   ``sha256:<64 hex>`` (checked: prefix and 71 characters): the  execute_wave,
                            patch plan's content hash; the approval is bound to it         rollback
targets                     number >= 1: machines this action touches                     execute_wave,
                                                                                          rollback
wave                        number >= 0: the wave's index in the plan (0 = canary)        execute_wave
canary                      true only if exactly ``true``: this is the canary wave (0)    no
drift_delta                 number in [0, 100]: % of the environment's fleet this wave    execute_wave
                            changes
maintenance_window_open     true only if exactly ``true`` (missing = closed)              no
requested_by                who or what asks (a sensor, a user); cannot approve itself     no
approval                    ``{"plan_hash": ..., "approver": ...}`` once a human approved  no
                            (must match ``plan_hash``)
fleet_size, site, platform, free context for the audit log; ignored by the policies       no
plan_id, reason ...
==========================  ===========================================================  ==========

Decision (``data.qlrf.gate.decision``)
--------------------------------------
``{"allow": bool, "requires_approval": bool, "deny": [reasons], "approval_reasons": [reasons],
"approved": bool}``. ``allow`` means *may run now*: the request is well formed, no reason denies
it, and it is either free of approval or carries a valid approval of its plan hash. A request that
needs approval but has none gets ``allow=false, requires_approval=true, deny=[]``: park it as
pending approval, then ask again with ``approval`` set.

Rules (one package each): production is never ``full_auto`` and production waves need an open
maintenance window (production_safety); ``plan_only`` never executes, ``canary_only`` runs only the
canary wave without approval (autonomy); high and critical risk always need approval (risk_level);
a wave above the environment's drift-delta limit, or a canary above the canary limit, is denied
(drift_delta; defaults dev 50 / staging 25 / prod 10 %, canary 10 / 5 / 2 %, overridable with
``data.qlrf.config``); approvals must match the plan hash and not come from the requester (gate).
The request schema itself (common.rego) denies unknown actions, environments, modes and risk levels,
and a decision is only ever ``allow`` for a request that passes it.

Embedded specifics (regopy 1.5.2 / rego-cpp), handled here: input is built by `_InputBuilder`
(rego-cpp would wrap integers beyond int64 and cut strings at NUL); outputs are parsed rejecting
duplicate keys and the policies never echo request strings (rego-cpp does not escape strings in its
JSON output); error outputs are read without regopy's ``Output.__str__`` (it segfaults on them).
One decision costs ~0.2-0.3 ms on this 2-core machine (rego-cpp spends a few microseconds per
evaluated condition); ``workers=N`` keeps N interpreters, used concurrently by ``decide()`` from
several threads and by ``decide_many()`` (rego-cpp runs outside the GIL).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import queue
import re
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from qlrf.settings import project_root

DECISION_PATH = "qlrf/gate/decision"
ENV_OPA_URL = "QLRF_OPA_URL"
ENV_OPA_TOKEN = "QLRF_OPA_TOKEN"
ENV_POLICY_DIR = "QLRF_POLICY_DIR"
_INT64 = (-(2**63), 2**63 - 1)


def default_policy_dir() -> Path:
    return Path(os.environ.get(ENV_POLICY_DIR) or project_root() / "policy")


class PolicyError(RuntimeError):
    """The policies cannot be used (a bad module, a failed compile); the message names the file."""


class RemoteError(RuntimeError):
    """The remote OPA did not answer with a decision (HTTP error, unreachable, bad body)."""


@dataclass(frozen=True)
class Decision:
    allow: bool
    requires_approval: bool
    reasons: tuple[str, ...]
    input: Any = field(repr=False)
    approval_reasons: tuple[str, ...] = ()
    approved: bool = False
    source: str = "embedded"

    @classmethod
    def deny(cls, reason: str, request: Any, source: str) -> Decision:
        return cls(allow=False, requires_approval=False, reasons=(reason,), input=request, source=source)

    def as_dict(self) -> dict:
        """The decision with its input, as the audit log records it."""
        return {
            "allow": self.allow,
            "requires_approval": self.requires_approval,
            "deny": list(self.reasons),
            "approval_reasons": list(self.approval_reasons),
            "approved": self.approved,
            "source": self.source,
            "input": self.input,
        }


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError(f"duplicate keys {sorted({k for k in keys if keys.count(k) > 1})}")
    return dict(pairs)


def strict_json(text: str | bytes) -> Any:
    """JSON that rejects duplicate keys (a forged field must not silently win)."""
    return json.loads(text, object_pairs_hook=_reject_duplicates)


def _string_list(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return tuple(sorted(value))
    return None


def decision_from_result(result: Any, request: Any, source: str) -> Decision:
    """A Decision from the policy's result document; anything unexpected is a deny."""
    if result is None:
        return Decision.deny("undefined decision: the policy did not decide (treated as deny)", request, source)
    if not isinstance(result, dict):
        return Decision.deny(f"malformed decision: expected an object, got {type(result).__name__}", request, source)
    allow, needs, approved = result.get("allow"), result.get("requires_approval"), result.get("approved", False)
    reasons = _string_list(result.get("deny"))
    approval_reasons = _string_list(result.get("approval_reasons", []))
    if not isinstance(allow, bool) or not isinstance(needs, bool) or not isinstance(approved, bool):
        return Decision.deny("malformed decision: allow, requires_approval and approved must be booleans", request, source)
    if reasons is None or approval_reasons is None:
        return Decision.deny("malformed decision: deny and approval_reasons must be lists of strings", request, source)
    return Decision(
        allow=allow and not reasons,  # never allow with a reason to deny, whatever the policy says
        requires_approval=needs,
        reasons=reasons,
        input=request,
        approval_reasons=approval_reasons,
        approved=approved,
        source=source,
    )


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


# --- modules ---------------------------------------------------------------------------------------

_IMPORT_V1 = re.compile(r"^\s*import\s+rego\.v1\s*$", re.MULTILINE)
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)\s*$", re.MULTILINE)
# A v0 rule body straight after the head ("deny[msg] {", "allow {"): Rego v1 needs `if`.
_V0_BODY = re.compile(r"^([A-Za-z_]\w*)(\[[^\]\n]*\])?\s*\{", re.MULTILINE)
_TEST_RULE = re.compile(r"^(test_\w*)\b", re.MULTILINE)


@dataclass(frozen=True)
class Module:
    path: Path
    name: str
    source: str
    package: str


def policy_files(policy_dir: Path, *, tests: bool = False) -> list[Path]:
    files = sorted(Path(policy_dir).glob("*.rego"))
    return [f for f in files if tests or not f.name.endswith("_test.rego")]


def read_module(path: Path, root: Path | None = None) -> Module:
    """Read and lint one module: Rego v1 only (``import rego.v1``, no v0 rule bodies)."""
    path = Path(path)
    try:
        name = str(path.relative_to(root.parent)) if root else str(path)
    except ValueError:
        name = str(path)
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{name}: cannot read: {exc}") from exc
    package = _PACKAGE.search(source)
    if not package:
        raise PolicyError(f"{name}: no `package` declaration")
    if not _IMPORT_V1.search(source):
        raise PolicyError(f"{name}: Rego v1 only: add `import rego.v1` (v0 modules are misread by regopy)")
    v0 = _V0_BODY.search(source)
    if v0:
        line = source.count("\n", 0, v0.start()) + 1
        raise PolicyError(f"{name}:{line}: Rego v0 rule body `{v0.group(0).strip()}`: write `{v0.group(1)}... if {{`")
    return Module(path=path, name=name, source=source, package=package.group(1))


def load_modules(policy_dir: Path, *, tests: bool = False) -> list[Module]:
    policy_dir = Path(policy_dir)
    files = policy_files(policy_dir, tests=tests)
    if not files:
        raise PolicyError(f"{policy_dir}: no Rego policies (*.rego)")
    return [read_module(f, policy_dir) for f in files]


_ERROR = re.compile(r"\(error \d+:(?P<file>[^|()]+)\|(?P<off>\d+)\|\d+")
_ERRORMSG = re.compile(r"\(errormsg \d+:(?P<msg>[^)]*)\)")


def _rego_error_text(exc: Exception, modules: Sequence[Module]) -> str:
    """rego-cpp's error S-expression as ``file:line:col: message``."""
    raw = str(exc.args[0] if exc.args else exc)
    sources = {m.name: m.source for m in modules}
    places = []
    for loc, msg in zip(_ERROR.finditer(raw), _ERRORMSG.finditer(raw), strict=False):
        file, off = loc.group("file"), int(loc.group("off"))
        src = sources.get(file, "")
        line = src.count("\n", 0, off) + 1
        col = off - (src.rfind("\n", 0, off) + 1) + 1
        places.append(f"{file}:{line}:{col}: {msg.group('msg')}")
    return "; ".join(places) or raw.strip()


def _regopy():
    try:
        import regopy
        from regopy import rego_shared
    except ImportError as exc:  # pragma: no cover - regopy is a hard dependency
        raise PolicyError(f"embedded policy evaluation needs regopy: {exc}") from exc
    return regopy, rego_shared


class _Interpreter:
    """One regopy interpreter with the modules added; raw queries that never touch the crashy paths.

    (regopy 1.5.2's ``Output.__str__`` segfaults on an error output, so outputs are read here.)
    """

    def __init__(self, modules: Sequence[Module], data: Mapping | None):
        regopy, self._rs = _regopy()
        self.modules = list(modules)
        self.interp = regopy.Interpreter()
        for m in self.modules:
            try:
                self.interp.add_module(m.name, m.source)
            except regopy.RegoError as exc:
                raise PolicyError(f"{m.name}: invalid Rego: {_rego_error_text(exc, self.modules)}") from exc
        if data:
            try:
                self.interp.add_data_json(json.dumps(data))
            except regopy.RegoError as exc:
                raise PolicyError(f"policy data rejected: {_rego_error_text(exc, self.modules)}") from exc

    def read_output(self, impl: int) -> tuple[bool, str]:
        rs = self._rs
        try:
            if not rs.rego_output_ok(impl):
                return False, rs.rego_get_error(self.interp._impl) or "rego-cpp reported an error without a message"
            return True, rs.rego_output_string(impl)
        finally:
            rs.rego_free_output(impl)

    def query(self, text: str) -> tuple[bool, str]:
        try:
            impl = self._rs.rego_query(self.interp._impl, text)
        except Exception as exc:  # RegoError: no output object at all
            return False, str(exc)
        return self.read_output(impl)

    def preflight(self, query: str) -> None:
        """Evaluate `query` once with no input; on failure name the module(s) whose package fails."""
        ok, text = self.query(query)
        if ok:
            return
        bad = [m.name for m in self.modules if not self.query(f"data.{m.package}")[0]]
        where = ", ".join(bad) if bad else ", ".join(m.name for m in self.modules)
        raise PolicyError(f"{where}: policy evaluation failed: {text.strip()}")


def _first_expression(text: str) -> Any:
    if text.strip() == "undefined":
        return None
    doc = strict_json(text)
    if isinstance(doc, list):
        doc = doc[0] if doc else {}
    exprs = doc.get("expressions") if isinstance(doc, dict) else None
    return exprs[0] if exprs else None


class EmbeddedEngine:
    """The policies compiled once into a regopy bundle; one query per decision (thread-safe)."""

    source = "embedded"

    def __init__(self, modules: Sequence[Module], data: Mapping | None = None, entrypoint: str = DECISION_PATH):
        self._interp = _Interpreter(modules, data)
        self._interp.preflight("data")
        self.entrypoint = entrypoint
        self._regopy, self._rs = _regopy()
        try:
            self._bundle = self._interp.interp.build(None, [entrypoint])
        except self._regopy.RegoError as exc:
            raise PolicyError(f"compiling {entrypoint} failed: {_rego_error_text(exc, modules)}") from exc
        if not self._bundle.ok():
            raise PolicyError(f"compiling {entrypoint} failed: {self._rs.rego_get_error(self._interp.interp._impl)}")
        self._input = _InputBuilder(self._rs)
        self._lock = threading.Lock()

    def evaluate(self, request: Any) -> Any:
        """The decision document for `request` (None when undefined); ValueError/TypeError for non-JSON."""
        impl_interp = self._interp.interp._impl
        rs = self._rs
        with self._lock:
            handle = self._input.build(request)
            try:
                rs.rego_set_input(impl_interp, handle)
            finally:
                self._input.free(handle)
            impl = rs.rego_bundle_query_entrypoint(impl_interp, self._bundle._impl, self.entrypoint)
            ok, text = self._interp.read_output(impl)
        if not ok:
            raise PolicyError(f"policy evaluation failed: {text.strip()}")
        try:
            return _first_expression(text)
        except ValueError as exc:  # e.g. a duplicate key: never let a forged field win
            raise PolicyError(f"policy evaluation failed: unreadable result: {exc}") from exc


class _InputBuilder:
    """Builds rego-cpp input straight from Python values, with JSON's rules and checks.

    About twice as fast as ``regopy.Input`` (which walks isinstance chains), and safe where it is
    not: strings with a NUL (rego-cpp would cut them) and non-finite floats are refused, integers
    outside int64 (rego-cpp would wrap them: 2**64 + 1 becomes 1) become floats, keys follow
    ``json.dumps`` (str; int/float -> their text; True/False/None -> "true"/"false"/"null").
    """

    def __init__(self, rs: Any):
        lib = rs.rego
        self._new, self._free = lib.regoNewInput, lib.regoFreeInput
        self._str, self._int, self._float = lib.regoInputString, lib.regoInputInt, lib.regoInputFloat
        self._bool, self._null = lib.regoInputBoolean, lib.regoInputNull
        self._item, self._object, self._array = lib.regoInputObjectItem, lib.regoInputObject, lib.regoInputArray

    def build(self, value: Any) -> int:
        handle = self._new()
        try:
            self._add(handle, value, 0)
        except BaseException:
            self._free(handle)
            raise
        return handle

    def free(self, handle: int) -> None:
        self._free(handle)

    def _text(self, handle: int, text: str) -> None:
        if "\x00" in text:
            raise ValueError("strings must not contain NUL characters")
        if self._str(handle, text.encode("utf-8")):
            raise ValueError("rego-cpp refused a string")

    def _add(self, handle: int, value: Any, depth: int) -> None:
        kind = type(value)
        if kind is str:
            return self._text(handle, value)
        if kind is bool:
            rc = self._bool(handle, value)
        elif kind is int:
            rc = self._int(handle, value) if _INT64[0] <= value <= _INT64[1] else self._float(handle, float(value))
        elif kind is float:
            if not math.isfinite(value):
                raise ValueError("Out of range float values are not JSON compliant")
            rc = self._float(handle, value)
        elif value is None:
            rc = self._null(handle)
        elif depth > 64:
            raise ValueError("input nested too deeply")
        elif isinstance(value, Mapping):
            for key, item in value.items():
                self._text(handle, key if type(key) is str else _json_key(key))
                self._add(handle, item, depth + 1)
                if self._item(handle):
                    raise ValueError("rego-cpp refused an object item")
            rc = self._object(handle, len(value))
        elif isinstance(value, list | tuple):
            for item in value:
                self._add(handle, item, depth + 1)
            rc = self._array(handle, len(value))
        elif isinstance(value, str | int | float):  # subclasses (enums, numpy scalars...): as JSON would see them
            return self._add(handle, json.loads(json.dumps(value)), depth)
        else:
            raise TypeError(f"Object of type {kind.__name__} is not JSON serializable")
        if rc:
            raise ValueError(f"rego-cpp refused a {kind.__name__}")


def _json_key(key: Any) -> str:
    if isinstance(key, bool) or key is None:
        return json.dumps(key)
    if isinstance(key, int | float):
        return json.dumps(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


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
                raise RemoteError(f"OPA at {self.url} closed the connection: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                raise RemoteError(f"OPA at {self.url} unreachable: {type(exc).__name__}: {exc}") from exc
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


# --- the gate --------------------------------------------------------------------------------------


class Gate:
    """Decide action requests with the Rego policies, embedded (regopy bundle) or remote (OPA)."""

    def __init__(
        self,
        mode: str = "embedded",
        *,
        policy_dir: Path | str | None = None,
        data: Mapping | None = None,
        url: str | None = None,
        timeout: float = 2.0,
        token: str | None = None,
        ca_file: str | None = None,
        workers: int = 1,
    ):
        if mode not in ("embedded", "remote"):
            raise ValueError(f"mode must be embedded or remote, got {mode!r}")
        self.mode = mode
        self.policy_dir = Path(policy_dir) if policy_dir else default_policy_dir()
        self.data = dict(data) if data else None
        self._engines: queue.SimpleQueue = queue.SimpleQueue()
        self.workers = max(1, int(workers))
        if mode == "remote":
            if not url:
                raise ValueError("remote mode needs the OPA url")
            self.url = url
            self._remote = RemoteEngine(url, timeout=timeout, token=token, ca_file=ca_file)
            for _ in range(self.workers):
                self._engines.put(self._remote)
        else:
            self.url = None
            modules = load_modules(self.policy_dir)
            for _ in range(self.workers):  # one interpreter per worker: rego-cpp runs outside the GIL
                self._engines.put(EmbeddedEngine(modules, self.data))

    @classmethod
    def embedded(cls, policy_dir: Path | str | None = None, data: Mapping | None = None, workers: int = 1) -> Gate:
        return cls("embedded", policy_dir=policy_dir, data=data, workers=workers)

    @classmethod
    def remote(cls, url: str, **kwargs: Any) -> Gate:
        return cls("remote", url=url, **kwargs)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Gate:
        """Remote when ``QLRF_OPA_URL`` is set (with ``QLRF_OPA_TOKEN`` as bearer token), else embedded."""
        env = os.environ if env is None else env
        url = env.get(ENV_OPA_URL)
        if url:
            return cls.remote(url, token=env.get(ENV_OPA_TOKEN) or None)
        return cls.embedded(env.get(ENV_POLICY_DIR) or None)

    @property
    def source(self) -> str:
        return self.mode

    def decide(self, request: Any) -> Decision:
        engine = self._engines.get()
        try:
            return self._decide(engine, request)
        finally:
            self._engines.put(engine)

    def _decide(self, engine: Any, request: Any) -> Decision:
        try:
            doc = json_input(request) if self.mode == "remote" else request  # embedded: checked while built
        except (TypeError, ValueError) as exc:
            return Decision.deny(f"input is not a JSON document: {exc}", request, self.mode)
        try:
            result = engine.evaluate(doc)
        except (RemoteError, PolicyError) as exc:
            return Decision.deny(str(exc), request, self.mode)
        except (ValueError, TypeError, RecursionError) as exc:  # the embedded input builder's checks
            return Decision.deny(f"input is not a JSON document: {exc}", request, self.mode)
        return decision_from_result(result, request, self.mode)

    def decide_many(self, requests: Iterable[Any]) -> list[Decision]:
        """Decide a batch, spread over the gate's workers (embedded: one interpreter each)."""
        items = list(requests)
        if self.workers == 1 or len(items) < 2 * self.workers:
            return [self.decide(r) for r in items]
        chunks = [items[i :: self.workers] for i in range(self.workers)]

        def run(chunk: list[Any]) -> list[Decision]:
            engine = self._engines.get()
            try:
                return [self._decide(engine, r) for r in chunk]
            finally:
                self._engines.put(engine)

        with ThreadPoolExecutor(self.workers) as pool:
            results = list(pool.map(run, chunks))
        out: list[Decision] = [None] * len(items)  # type: ignore[list-item]
        for offset, chunk in enumerate(results):
            out[offset :: self.workers] = chunk
        return out

    def run_tests(self) -> PolicyTestReport:
        """Run every ``test_`` rule of ``policy/*_test.rego`` (embedded, whatever the gate's mode)."""
        return run_policy_tests(self.policy_dir, self.data)

    def close(self) -> None:
        if self.mode == "remote":
            with contextlib.suppress(Exception):
                self._remote.close()


# --- policy tests ----------------------------------------------------------------------------------


class PolicyTest(NamedTuple):
    name: str  # data path, e.g. qlrf.remediation.gate.production_safety_test.test_prod_never_full_auto
    file: str
    passed: bool
    message: str
    ms: float


class PolicyTestReport(NamedTuple):
    passed: int
    failed: int
    details: list[PolicyTest]

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0

    def summary(self) -> str:
        lines = [f"{'PASS' if t.passed else 'FAIL'} {t.name} ({t.file}){'' if t.passed else ': ' + t.message}" for t in self.details]
        lines.append(f"{self.passed} passed, {self.failed} failed")
        return "\n".join(lines)


# rego-cpp 1.5.2 mis-evaluates (or aborts the process on) `with input as {...}` and `with x as <rule>`;
# field-by-field `with input.<field> as <literal>` works. Test modules are linted for both.
_WITH_WHOLE_INPUT = re.compile(r"\bwith\s+input\s+as\b")
_WITH_REF_VALUE = re.compile(r"\bwith\s+[\w.\[\]\"]+\s+as\s+(?!(?:true|false|null)\b)([A-Za-z_][\w.]*)")


def lint_test_module(m: Module) -> None:
    for pattern, advice in (
        (_WITH_WHOLE_INPUT, "set the input field by field: `with input.<field> as <value>`"),
        (_WITH_REF_VALUE, "give `with` a literal value, not a rule or variable"),
    ):
        hit = pattern.search(m.source)
        if hit:
            line = m.source.count("\n", 0, hit.start()) + 1
            raise PolicyError(f"{m.name}:{line}: `{hit.group(0)}` is not supported by regopy 1.5.2: {advice}")


def run_policy_tests(policy_dir: Path | str | None = None, data: Mapping | None = None) -> PolicyTestReport:
    """Evaluate every ``test_`` rule of ``*_test.rego``; one passes only when defined and true (as in OPA).

    All tests are compiled once into one bundle (one entry point each): a query per test in
    interpreter mode recompiles every module (~1 s a test), a bundle query takes ~1 ms.
    """
    policy_dir = Path(policy_dir) if policy_dir else default_policy_dir()
    modules = load_modules(policy_dir, tests=True)
    tests: list[tuple[Module, str]] = []
    for m in modules:
        if m.path.name.endswith("_test.rego"):
            lint_test_module(m)
            tests += [(m, name) for name in dict.fromkeys(_TEST_RULE.findall(m.source))]
    if not tests:
        return PolicyTestReport(0, 0, [])
    interp = _Interpreter(modules, data)
    interp.preflight("data")
    entrypoints = [f"{m.package.replace('.', '/')}/{name}" for m, name in tests]
    try:
        bundle = interp.interp.build(None, entrypoints)
    except Exception as exc:
        raise PolicyError(f"compiling the policy tests failed: {_rego_error_text(exc, modules)}") from exc
    rs = interp._rs
    details = []
    for (m, name), entrypoint in zip(tests, entrypoints, strict=True):
        started = time.perf_counter()
        try:
            impl = rs.rego_bundle_query_entrypoint(interp.interp._impl, bundle._impl, entrypoint)
            ok, text = interp.read_output(impl)
        except Exception as exc:
            ok, text = False, str(exc)
        passed, message = False, f"error: {text.strip()}"
        if ok:
            try:
                value = _first_expression(text)
            except ValueError as exc:
                message = f"unreadable result: {exc}"
            else:
                passed = value is True
                message = "" if passed else ("undefined: a condition did not hold" if value is None else f"= {value!r}")
        elapsed = (time.perf_counter() - started) * 1e3
        details.append(PolicyTest(f"{m.package}.{name}", m.name, passed, message, elapsed))
    passed = sum(1 for t in details if t.passed)
    return PolicyTestReport(passed, len(details) - passed, details)


def percent(n: float, fleet: float) -> float:
    """drift_delta helper: `n` machines as a percentage of `fleet` (0 when the fleet is empty)."""
    return 0.0 if fleet <= 0 else round(100.0 * n / fleet, 4)


__all__ = [
    "DECISION_PATH",
    "Decision",
    "EmbeddedEngine",
    "Gate",
    "PolicyError",
    "PolicyTest",
    "PolicyTestReport",
    "RemoteEngine",
    "RemoteError",
    "decision_from_result",
    "json_input",
    "load_modules",
    "percent",
    "run_policy_tests",
    "strict_json",
]

