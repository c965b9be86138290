"""Citation names the offline router writes, and how to check each against the tool results.

Why a small grammar: an answer often states a total over several calls (drift per platform, summed)
or one row of a roll-up; a citation must say exactly where its value comes from so anyone (a test,
the orchestrator, a reviewer) can recompute it from the recorded tool results:

* ``vms_affected``, ``readiness.dr_ready``, ``rows[0].asset_id``  a path in a call's result
* ``rows[site=syd1,environment=prod].drift_score``                 the row matching those fields
* ``sum(rows[].revoked)``                                          summed over every row of every ok call
* ``len(revocations)``                                             list lengths, summed over the ok calls
* ``arguments.package``                                            what the call was asked (a name echoed
  from the intent, e.g. ``openssl@<3.0.8``, is cited as the argument it became, not as a fact)
* a leading ``[family=rhel-9] `` limits any of these to calls made with those arguments
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qlrf.ai.answers import Citation

_ARGS = re.compile(r"^\[([^\]]*)\]\s+(.*)$")
_SUM = re.compile(r"^sum\(([\w]+)\[\]\.([\w]+)\)$")
_LEN = re.compile(r"^len\(([\w.]+)\)$")
_SELECT = re.compile(r"^([\w]+)\[([^\]]*=[^\]]*)\]\.(.+)$")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")


class Ungrounded(LookupError):
    """A citation that no recorded tool result supports."""


def _pairs(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(","))


def _path(value: Any, path: str) -> Any:
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            value = value[int(part[1:-1])]
        elif isinstance(value, Mapping):
            value = value[part]
        else:
            raise KeyError(part)
    return value


def resolve(calls: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]], tool: str, name: str) -> Any:
    """The value ``name`` denotes in the ok results of ``tool`` among ``calls`` ((tool, arguments, result))."""
    selected = [(args, result) for t, args, result in calls if t == tool and result.get("status") == "ok"]
    if m := _ARGS.match(name):
        want, name = _pairs(m.group(1)), m.group(2)
        selected = [(a, r) for a, r in selected if all(str(a.get(k)) == v for k, v in want.items())]
    if not selected:
        raise Ungrounded(f"{tool}: no ok call for {name!r}")
    if name.startswith("arguments."):
        key = name.removeprefix("arguments.")
        for args, _ in selected:
            if key in args:
                return args[key]
        raise Ungrounded(f"{tool}: no call with argument {key!r}")
    if m := _SUM.match(name):
        return sum(row[m.group(2)] or 0 for _, r in selected for row in r.get(m.group(1), []))
    if m := _LEN.match(name):
        return sum(len(_path(r, m.group(1))) for _, r in selected)
    if m := _SELECT.match(name):
        want = _pairs(m.group(2))
        for _, result in selected:
            for row in result.get(m.group(1), []):
                if all(str(row.get(k)) == v for k, v in want.items()):
                    return _path(row, m.group(3))
        raise Ungrounded(f"{tool}: no {m.group(1)} row with {m.group(2)}")
    for _, result in selected:
        try:
            return _path(result, name)
        except (KeyError, IndexError, TypeError):
            continue
    raise Ungrounded(f"{tool}: no {name!r} in its results")


def citation_problems(citations: Iterable[Citation],
                      calls: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> list[str]:
    """Every citation whose value its tool results do not give (empty when all are grounded)."""
    problems = []
    for c in citations:
        try:
            actual = resolve(calls, c.tool, c.name)
        except (Ungrounded, KeyError, IndexError, TypeError, ValueError) as exc:
            problems.append(f"{c.tool} {c.name}: {exc}")
            continue
        if not _same(actual, c.value):
            problems.append(f"{c.tool} {c.name}: cites {c.value!r} but the result says {actual!r}")
    return problems


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=0, abs_tol=1e-6)
    return a == b


def numbers_not_cited(answer: str, citations: Iterable[Citation], names: Iterable[str] = ()) -> list[str]:
    """Numbers written in ``answer`` that are no cited value (nor part of a cited text value or of one of
    ``names``, e.g. the family names an "I don't know family X; known: ..." answer lists)."""
    citations = list(citations)
    texts = {str(c.value) for c in citations if isinstance(c.value, str)} | set(names)
    cited_texts = sorted(texts, key=len, reverse=True)
    numbers = [float(c.value) for c in citations if isinstance(c.value, int | float) and not isinstance(c.value, bool)]
    for text in cited_texts:  # a cited name or version ("syd1", "3.1.0") is not a number of its own
        answer = re.sub(rf"(?<![\w.]){re.escape(text)}(?![\w])", " ", answer)
    missing = []
    for m in _NUMBER.finditer(answer):
        written = m.group(1) + (m.group(2) or "")
        value = float(written.replace(",", ""))
        decimals = len((m.group(2) or ".")[1:])
        if not any(math.isclose(round(n, decimals), value, abs_tol=1e-9) for n in numbers):
            missing.append(written)
    return missing
