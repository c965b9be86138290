"""The Copilot's loaders: one orchestrator per warehouse day and configuration, and the context status.

Why cached as a resource: the orchestrator holds the gates (Rego interpreters), the task store and
the proposers (the offline router's TF-IDF matcher); building them per question would cost more
than answering. The key holds everything that changes what it answers with (warehouse, day, model
choice, task database), so a changed configuration gets a fresh one.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from qlrf.ai.orchestrator import Orchestrator


@st.cache_resource(max_entries=4, show_spinner="Starting the copilot (policy gates, router, task store)…")
def orchestrator(root: str, day: str, model: str, database: str) -> Orchestrator:
    """The configured orchestrator answering from ``day`` (the newest materialised day when the page opened).

    ``root``, ``model`` and ``database`` are only cache keys: :meth:`Orchestrator.from_env` reads
    the same settings itself. Built on the first question, not on page load (it takes seconds)."""
    from qlrf.ai.orchestrator import Orchestrator

    del root, model, database
    return Orchestrator.from_env(today=date.fromisoformat(day))


def store_status(url: str) -> tuple[bool, str]:
    """(reachable, one line) for the task store the Copilot writes proposed tasks to."""
    from dashboards.data.tasks import task_store

    try:
        pending = task_store(url).list("pending_approval")
    except Exception as exc:  # noqa: BLE001 - any driver error means "not reachable"; the line says which
        return False, f"task store not reachable ({one_line(exc)})"
    return True, f"task store reachable, {len(pending)} task(s) waiting for approval"


def one_line(exc: BaseException) -> str:
    """An error as one short line (type and first line of its message): what a page may show of it."""
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
