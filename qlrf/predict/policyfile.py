"""Validated YAML policy files whose errors name the file and the line (weights, CVEs, prices, capacity).

A malformed file must fail the asset that reads it with a message a person can act on, so each
pydantic error is mapped back to the YAML node it came from (``yaml.compose`` keeps start marks).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class PolicyFileError(ValueError):
    """A policy file that cannot be used; the message starts with ``<file>:<line>:``."""


def _lines(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Every key path in the document -> its 1-based line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            out[child] = key.start_mark.line + 1
            _lines(value, child, out)
            out[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            _lines(value, (*path, index), out)
    return out


def line_of(lines: dict[tuple, int], loc: tuple) -> int:
    """The line of the deepest known prefix of a pydantic error location."""
    loc = tuple(loc)
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc, 1)


def load_policy(model: type[M], path: Path | str, what: str) -> tuple[M, dict[tuple, int]]:
    """(validated model, key path -> line) or PolicyFileError naming the file and line."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyFileError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from exc
    try:
        node = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise PolicyFileError(f"{path}:{line}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from exc
    lines = _lines(node) if node is not None else {(): 1}
    try:
        return model.model_validate(raw), lines
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(document)"
            problems.append(f"{path}:{line_of(lines, err['loc'])}: {where}: {err['msg']}")
        raise PolicyFileError(f"invalid {what}: " + "; ".join(problems)) from exc


def fail(path: Path | str, lines: dict[tuple, int], loc: tuple, message: str) -> PolicyFileError:
    """A PolicyFileError for a rule pydantic cannot express (cross-field checks), at `loc`'s line."""
    return PolicyFileError(f"{path}:{line_of(lines, loc)}: {'.'.join(str(p) for p in loc)}: {message}")
