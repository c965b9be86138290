"""The embedded engine: the policies compiled once into a regopy (rego-cpp) bundle, in-process.

regopy 1.5.2 specifics handled here: input is built by `_InputBuilder` (rego-cpp would wrap
integers beyond int64 and cut strings at NUL); outputs are parsed rejecting duplicate keys; error
outputs are read without regopy's ``Output.__str__`` (it segfaults on them).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from qlrf.remediation.gate.decision import strict_json
from qlrf.remediation.gate.modules import DECISION_PATH, Module, PolicyError, rego_error_text

_INT64 = (-(2**63), 2**63 - 1)


def regopy_modules():
    try:
        import regopy
        from regopy import rego_shared
    except ImportError as exc:  # pragma: no cover - regopy is a hard dependency
        raise PolicyError(f"embedded policy evaluation needs regopy: {exc}") from exc
    return regopy, rego_shared


class Interpreter:
    """One regopy interpreter with the modules added; raw queries that never touch the crashy paths.

    (regopy 1.5.2's ``Output.__str__`` segfaults on an error output, so outputs are read here.)
    """

    def __init__(self, modules: Sequence[Module], data: Mapping | None):
        regopy, self._rs = regopy_modules()
        self.modules = list(modules)
        self.interp = regopy.Interpreter()
        for m in self.modules:
            try:
                self.interp.add_module(m.name, m.source)
            except regopy.RegoError as exc:
                raise PolicyError(f"{m.name}: invalid Rego: {rego_error_text(exc, self.modules)}") from exc
        if data:
            try:
                self.interp.add_data_json(json.dumps(data))
            except regopy.RegoError as exc:
                raise PolicyError(f"policy data rejected: {rego_error_text(exc, self.modules)}") from exc

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


def first_expression(text: str) -> Any:
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
        self._interp = Interpreter(modules, data)
        self._interp.preflight("data")
        self.entrypoint = entrypoint
        self._regopy, self._rs = regopy_modules()
        try:
            self._bundle = self._interp.interp.build(None, [entrypoint])
        except self._regopy.RegoError as exc:
            raise PolicyError(f"compiling {entrypoint} failed: {rego_error_text(exc, modules)}") from exc
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
            return first_expression(text)
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


__all__ = ["EmbeddedEngine", "Interpreter", "first_expression", "regopy_modules"]
