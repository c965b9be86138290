"""The day's proactive insights (the ``ai_insights`` table) as the Overview and the Copilot show them.

Why here and not in the pages: both pages need the same ranked rows, and a missing or unreadable
partition must read the same everywhere (one sentence naming it and how to produce it).
"""

from __future__ import annotations

import pandas as pd

from qlrf.views.base import Scope, scan

COLUMNS = ("rank", "kind", "subject", "severity", "score", "title", "agent", "task_type", "intent")
SEVERITY_COLOUR = {"critical": "violet", "high": "red", "medium": "orange", "low": "green"}


def ranked(wh, day: str, limit: int = 10, orgs: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The top ``limit`` findings of ``day`` by rank (1 = most urgent); empty when nothing needs attention.
    Insights are fleet-wide: a reader restricted to `orgs` gets a DataProblem saying so."""
    query = f"SELECT {', '.join(COLUMNS)} FROM t ORDER BY rank LIMIT $limit"
    return scan(wh, "ai_insights", Scope(day, orgs=orgs), query, {"limit": int(limit)}, daily=True)
