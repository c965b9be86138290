"""Number grounding shared by every model answer: is each number written in a text one the sources hold?

The fleet summary (``qlrf.ai.summary``) checks its text against the day's facts; the model path of
the orchestrator (``qlrf.ai.clients.proposer``) checks an agent's answer against the tool results of
its conversation. Both ask the same questions, answered here once: which numbers a text writes (names
such as ``syd1`` or ``i-0042`` are not numbers), and whether a written number is a source value,
possibly rounded (rounding is reporting; arithmetic is a new claim nobody checked).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\w)")


def decimals(value: float) -> int | None:
    """Decimal places as written (``2.50`` -> 2 via repr of the float: 1); None for exponent forms."""
    if float(value).is_integer():
        return 0
    text = repr(float(value))
    return None if "e" in text else len(text.split(".", 1)[1])


def matches(value: float, places: int | None, fact: float) -> bool:
    """`value` is `fact` (sign aside: text says "falling 1.5 a week"), possibly rounded to `places`."""
    value, fact = abs(value), abs(fact)
    if math.isclose(value, fact, rel_tol=0, abs_tol=1e-9):
        return True
    return places is not None and math.isclose(round(fact, places), value, rel_tol=0, abs_tol=1e-9)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def numbers_written(text: str, labels: Iterable[str] = ()) -> list[tuple[str, float, int]]:
    """(as written, value, decimals) for each number in `text`, after removing every label as a whole
    word (longest first), so the digits inside a site, VM or version name are never read as claims."""
    for label in sorted({lb for lb in labels if lb}, key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(label)}(?!\w)", " ", text)
    found = []
    for match in NUMBER.finditer(text):
        whole, fraction = match.group(1), match.group(2) or ""
        found.append((whole + fraction, float(whole.replace(",", "") + fraction), len(fraction[1:])))
    return found


def numeric_leaves(node: Any, item_key: Callable[[Mapping], str | None] | None = None,
                   prefix: str = "") -> dict[str, float]:
    """Every finite number in a JSON-like tree by dotted path (``rows.0.vms``); a list item is keyed by
    ``item_key(item)`` when that names it (``most_drifted_sites.syd1.drift_score``), else its index."""
    out: dict[str, float] = {}

    def walk(path: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, child in value.items():
                walk(f"{path}.{key}" if path else str(key), child)
        elif isinstance(value, list | tuple):
            for i, item in enumerate(value):
                key = item_key(item) if item_key is not None and isinstance(item, Mapping) else None
                walk(f"{path}.{key if key is not None else i}" if path else str(key if key is not None else i), item)
        elif is_number(value):
            out[path] = float(value)

    walk(prefix, node)
    return out


def text_leaves(node: Any) -> set[str]:
    """Every string value in a JSON-like tree: the names a grounded text may mention without them
    counting as numbers (sites, asset ids, image versions, ISO dates)."""
    out: set[str] = set()
    if isinstance(node, Mapping):
        for child in node.values():
            out |= text_leaves(child)
    elif isinstance(node, list | tuple):
        for child in node:
            out |= text_leaves(child)
    elif isinstance(node, str):
        out.add(node)
    return out


def list_lengths(node: Any) -> list[float]:
    """The length of every list in a tree: "3 VMs" may count the rows a source returned."""
    out: list[float] = []
    if isinstance(node, Mapping):
        for child in node.values():
            out += list_lengths(child)
    elif isinstance(node, list | tuple):
        out.append(float(len(node)))
        for child in node:
            out += list_lengths(child)
    return out
