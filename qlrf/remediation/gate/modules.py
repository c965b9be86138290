"""Reading and linting the Rego modules under ``policy/`` (Rego v1 only), and naming their errors.

Shared by the embedded engine and the policy test runner, so both refuse the same modules with the
same ``file:line`` messages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qlrf.envparse import environ
from qlrf.remediation.gate.decision import GateFailure, Outcome
from qlrf.settings import project_root

DECISION_PATH = "qlrf/gate/decision"
ENV_POLICY_DIR = "QLRF_POLICY_DIR"


def default_policy_dir() -> Path:
    return Path(environ().get(ENV_POLICY_DIR) or project_root() / "policy")


class PolicyError(GateFailure):
    """The policies cannot be used (a bad module, a failed compile); the message names the file."""

    outcome = Outcome.ENGINE_ERROR


_IMPORT_V1 = re.compile(r"^\s*import\s+rego\.v1\s*$", re.MULTILINE)
_PACKAGE = re.compile(r"^\s*package\s+([A-Za-z_][\w.]*)\s*$", re.MULTILINE)
# A v0 rule body straight after the head ("deny[msg] {", "allow {"): Rego v1 needs `if`.
_V0_BODY = re.compile(r"^([A-Za-z_]\w*)(\[[^\]\n]*\])?\s*\{", re.MULTILINE)


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


def rego_error_text(exc: Exception, modules: Sequence[Module]) -> str:
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


__all__ = [
    "DECISION_PATH",
    "ENV_POLICY_DIR",
    "Module",
    "PolicyError",
    "default_policy_dir",
    "load_modules",
    "policy_files",
    "read_module",
    "rego_error_text",
]
