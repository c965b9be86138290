"""Block YAML for big JSON-shaped documents (dicts, lists, str, int, float, bool, None), fast.

Why: a patch plan for one site of a million-VM estate has ~11,000 targets, and the task store keeps
it as YAML. PyYAML's representer builds a node per scalar in Python even with libyaml's emitter
(~1 s for such a plan here); this writes the same block layout (``safe_dump(..., sort_keys=False)``:
two-space indent, list items at their key's indent) straight to text.

Every scalar means what it meant: a string is written plain only when it starts with a letter,
holds nothing but letters, digits and ``_ . - /``, and is not one of YAML 1.1's boolean or null
words; anything else (numbers, dates, colons, spaces, quotes, non-ASCII...) is written as PyYAML's
own safe dumper writes it in flow style, one line, cached per value. So ``yaml.safe_load(dump(d))
== d`` for any such document; the text differs from PyYAML's only in never folding long lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import yaml

_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")
# Words the YAML 1.1 resolver reads as booleans or null (y/n are not, but quoting them costs nothing).
_RESERVED = frozenset({"yes", "no", "true", "false", "on", "off", "null", "y", "n"})
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@lru_cache(maxsize=1 << 16)
def _string(value: str) -> str:
    return value if _PLAIN.fullmatch(value) and value.lower() not in _RESERVED else _quoted(value)


@lru_cache(maxsize=1 << 16, typed=True)
def _quoted(value: Any) -> str:
    """The value as PyYAML's safe dumper writes it inside a flow sequence, on one line (a string with a
    line break is double-quoted, where the break is the escape ``\\n``)."""
    text = yaml.dump([value], Dumper=_DUMPER, default_flow_style=True, width=1 << 30, allow_unicode=False)
    if "\n" in text.strip():
        text = yaml.dump([value], Dumper=_DUMPER, default_flow_style=True, default_style='"', width=1 << 30,
                         allow_unicode=False)
    return text.strip()[1:-1]


def scalar(value: Any) -> str:
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _quoted(value)
    raise TypeError(f"not a JSON-shaped value: {type(value).__name__}")


def _empty(value: Any) -> str | None:
    if isinstance(value, Mapping) and not value:
        return "{}"
    if isinstance(value, list | tuple) and not value:
        return "[]"
    return None


def _mapping(doc: Mapping, pad: str, out: list[str]) -> None:
    for key, value in doc.items():
        if not isinstance(key, str):
            raise TypeError(f"mapping keys must be strings, not {type(key).__name__}")
        if isinstance(value, str):  # most values: one line, no nesting
            out.append(f"{pad}{scalar(key)}: {scalar(value)}\n")
        elif isinstance(value, Mapping) and value:
            out.append(f"{pad}{scalar(key)}:\n")
            _mapping(value, pad + "  ", out)
        elif isinstance(value, list | tuple) and value:
            out.append(f"{pad}{scalar(key)}:\n")
            _sequence(value, pad, out)
        else:
            out.append(f"{pad}{scalar(key)}: {_empty(value) or scalar(value)}\n")


def _sequence(items: Sequence, pad: str, out: list[str]) -> None:
    inner = pad + "  "
    for item in items:
        if isinstance(item, str):
            out.append(f"{pad}- {scalar(item)}\n")
        elif isinstance(item, Mapping) and item:
            start = len(out)
            _mapping(item, inner, out)
            out[start] = f"{pad}- {out[start][len(inner):]}"
        elif isinstance(item, list | tuple) and item:
            out.append(f"{pad}-\n")
            _sequence(item, inner, out)
        else:
            out.append(f"{pad}- {_empty(item) or scalar(item)}\n")


def dump(doc: Mapping) -> str:
    """`doc` (a mapping, as a JSON-mode ``model_dump`` gives it) as block YAML text."""
    out: list[str] = []
    _mapping(doc, "", out)
    return "".join(out) or "{}\n"


__all__ = ["dump", "scalar"]
