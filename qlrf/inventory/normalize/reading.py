"""Reading export files so that one bad record never costs its file.

`json.load` fails a whole file for faults that sit inside one record: bytes that are not UTF-8,
nesting deeper than the parser's recursion limit. And it accepts values no record should carry
(NaN, Infinity, 1e400 as an id). So a file is read in two passes only when it needs them:

- the fast path is plain `json.loads` of strictly decoded text (a million-VM export pays nothing);
- a file with a sign of trouble (undecodable bytes, surrogate escapes, non-finite numbers, too
  deep) is parsed leniently: bad bytes become lone surrogates, non-finite numbers and over-deep
  subtrees become `Defect` markers, and the file is reported as *suspect*.

The normalisers then screen each record of a suspect file (`screen`) and reject only the records
that hold a defect, naming file, index and id.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from qlrf.inventory.contract import RecordError

# Deeper than this, a subtree is replaced by a defect marker when the parser's own limit was hit.
MAX_DEPTH = 64
DEFECT_PREFIX = "\x00qlrf-defect:"

# Cheap signs (plain substring searches: a regex over a 50 MB export costs seconds) that a decoded
# file may hold surrogate escapes the screen must look at; a false alarm only costs the lenient parse.
# NaN/Infinity and overflowing floats need no search: the parser's hooks see them (see _fast).
_SIGNS = ("\\ud", "\\uD")
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class Defect:
    """A value that parsed but is not a value a record may hold (NaN, Infinity, an overflowed number)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"

    def __str__(self) -> str:
        raise ValueError(self.what)


def _constant(name: str) -> Defect:
    return Defect(f"{name} is not a number a record may hold")


def _float(text: str) -> float | Defect:
    value = float(text)
    return value if math.isfinite(value) else Defect(f"{text} overflows a number")


def _int(text: str) -> int | Defect:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts
        return Defect(f"a {len(text)}-digit integer is not an id")


def _cap_depth(text: str, limit: int = MAX_DEPTH) -> str:
    """Replace every subtree that opens deeper than `limit` with a defect string, so the rest parses."""
    out: list[str] = []
    depth, skip_from, last = 0, None, 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth == limit + 1 and skip_from is None:
                out.append(text[last:match.start()])
                skip_from = match.start()
        elif token in "]}":
            if depth == limit + 1 and skip_from is not None:
                out.append(json.dumps(f"{DEFECT_PREFIX}nesting deeper than {limit} levels"))
                skip_from, last = None, match.end()
            depth -= 1
    out.append(text[last:] if skip_from is None else "")
    return "".join(out)


def _lenient(text: str) -> object:
    return json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)


def _decode(raw: bytes) -> tuple[str, bool]:
    """(text, suspect): invalid UTF-8 bytes become lone surrogates that `screen` rejects per record."""
    encoding = json.detect_encoding(raw)
    try:
        return raw.decode(encoding), False
    except UnicodeDecodeError:
        if not encoding.startswith("utf-8"):
            raise
        return raw.decode(encoding, errors="surrogateescape"), True


def _fast(text: str) -> tuple[object, bool]:
    """Plain parse. The hooks run only on floats (exports hold few) and on NaN/Infinity tokens, so a
    clean file pays nothing, and a defect still marks the file suspect."""
    defects: list[Defect] = []

    def seen(value):
        if isinstance(value, Defect):
            defects.append(value)
        return value

    doc = json.loads(text, parse_float=lambda t: seen(_float(t)), parse_constant=lambda c: seen(_constant(c)))
    return doc, bool(defects)


def parse(raw: bytes) -> tuple[object, bool]:
    """(document, suspect). Raises ValueError only when the file as a whole is not JSON."""
    text, suspect = _decode(raw)
    suspect = suspect or any(sign in text for sign in _SIGNS)
    try:
        return (_lenient(text), True) if suspect else _fast(text)
    except RecursionError:
        return _lenient(_cap_depth(text)), True
    except json.JSONDecodeError:
        raise
    except ValueError:  # e.g. an integer literal too long to convert
        return _lenient(text), True


@dataclass
class Loaded:
    """Parsed documents as (source, doc), the sources whose records must be screened, and file errors."""

    docs: list[tuple[str, object]] = field(default_factory=list)
    suspect: set[str] = field(default_factory=set)
    errors: list[RecordError] = field(default_factory=list)


def load_json_files(paths: Iterable[str | Path]) -> Loaded:
    loaded = Loaded()
    for path in paths:
        source = str(path)
        try:
            doc, suspect = parse(Path(path).read_bytes())
        except OSError as exc:
            loaded.errors.append(RecordError(f"cannot read JSON: {exc.strerror or exc}", source=source))
            continue
        except (ValueError, RecursionError) as exc:
            loaded.errors.append(RecordError(f"cannot read JSON: {exc}", source=source))
            continue
        loaded.docs.append((source, doc))
        if suspect:
            loaded.suspect.add(source)
    return loaded


def _bad_text(text: str) -> str | None:
    if text.startswith(DEFECT_PREFIX):
        return text.removeprefix(DEFECT_PREFIX)
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8 text"
    return None


def screen(record: object) -> None:
    """Raise ValueError naming the first place in `record` that holds a defect (iterative: no depth limit)."""
    stack: list[tuple[str, object]] = [("", record)]
    while stack:
        where, value = stack.pop()
        problem = None
        if isinstance(value, Defect):
            problem = value.what
        elif isinstance(value, str):
            problem = _bad_text(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                if _bad_text(key):
                    raise ValueError(f"{where or 'record'} has a key that is {_bad_text(key)}")
                stack.append((f"{where}.{key}" if where else key, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
        if problem:
            raise ValueError(f"{where or 'record'}: {problem}")
