"""The Rego test runner behind ``qlrf policy test``: every ``test_`` rule of ``policy/*_test.rego``.

Runs embedded whatever the gate's mode, so policy tests need no OPA server.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from qlrf.remediation.gate.embedded import Interpreter, first_expression
from qlrf.remediation.gate.modules import (
    Module,
    PolicyError,
    default_policy_dir,
    load_modules,
    rego_error_text,
)

_TEST_RULE = re.compile(r"^(test_\w*)\b", re.MULTILINE)


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
    interp = Interpreter(modules, data)
    interp.preflight("data")
    entrypoints = [f"{m.package.replace('.', '/')}/{name}" for m, name in tests]
    try:
        bundle = interp.interp.build(None, entrypoints)
    except Exception as exc:
        raise PolicyError(f"compiling the policy tests failed: {rego_error_text(exc, modules)}") from exc
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
                value = first_expression(text)
            except ValueError as exc:
                message = f"unreadable result: {exc}"
            else:
                passed = value is True
                message = "" if passed else ("undefined: a condition did not hold" if value is None else f"= {value!r}")
        elapsed = (time.perf_counter() - started) * 1e3
        details.append(PolicyTest(f"{m.package}.{name}", m.name, passed, message, elapsed))
    passed = sum(1 for t in details if t.passed)
    return PolicyTestReport(passed, len(details) - passed, details)


__all__ = ["PolicyTest", "PolicyTestReport", "lint_test_module", "run_policy_tests"]
