"""How pages say that data is missing or unreadable: one sentence, what and how to produce it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from dashboards.components.text import safe
from dashboards.data import estate
from qlrf.views import health
from qlrf.views.base import DataProblem, Scope

T = TypeVar("T")


def no_report(root: str) -> None:
    """The warehouse has no fleet report at all: say how to make one and stop the page."""
    st.info(f"No fleet report in {safe(root)} yet. Run `make run` (or `qlrf run --date YYYY-MM-DD`) to produce one.")
    st.stop()


def load(fn: Callable[..., T], *args) -> T | None:
    """`fn(*args)`, or None after a warning naming what is missing (never a stack trace)."""
    try:
        return fn(*args)
    except DataProblem as exc:
        st.warning(safe(str(exc)))
        return None


def completeness(root: str, day: str, tables: tuple[str, ...]) -> None:
    """A warning when any of `tables` is missing or unreadable for `day` (e.g. one platform not run)."""
    found = estate.gaps(root, day, tables)
    if found:
        st.warning(safe(health.explain(found, day)), icon="⚠️")


def page(title: str, note: str = "") -> tuple[str, Scope]:
    """The head every warehouse page shares: title, the chosen scope (or stop with how to get data), its caption."""
    from dashboards.components import filters
    from dashboards.data import root

    location = root()
    st.title(title)
    scope = filters.current()
    if scope is None:
        no_report(location)
    st.caption(filters.describe(scope) + (f" · {note}" if note else ""))
    return location, scope
