"""One Copilot exchange on screen: the answer (streamed once), citations, validation steps, notes, the task card.

Every text here came from the estate or a model, so it reaches the page only through `safe()`;
the answer keeps its line structure (each line escaped on its own).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from dashboards.components import cards
from dashboards.components.tables import table
from dashboards.components.text import safe
from qlrf.ai.copilot import answer_chunks
from qlrf.remediation.approvals import TaskNotFound, TaskStore
from qlrf.tenancy.dashboard_identity import Session

if TYPE_CHECKING:
    from qlrf.ai.answers import AskResult

OUTCOME_ICON = {"passed": "✅", "flagged": "⚠️", "failed": "⛔", "skipped": "➖"}
SOURCE_LABEL = {"offline": "offline router (no model)", "model": "model"}


def answer_markdown(result: AskResult) -> str:
    return "\n".join(safe(line) for line in result.answer.splitlines())


def show(result: AskResult, n: int, *, stream: bool, store: TaskStore | None, who: Session, now: datetime,
         card: bool = True) -> None:
    """Exchange `n` of this session; `stream` only for the question just asked (history renders whole)."""
    text = answer_markdown(result)
    if stream:
        st.write_stream(answer_chunks(text))
    else:
        st.markdown(text)
    what = " · ".join(x for x in (f"agent {result.agent}" if result.agent else "", result.task_type or "") if x)
    st.caption(f"Source: {SOURCE_LABEL.get(result.source, safe(result.source))}" + (f" · {safe(what)}" if what else ""))
    if result.refused_by:
        st.error(f"Refused by the **{safe(result.refused_by)}** step: no task was created.")
    for note in result.notes:
        st.caption(f"Note: {safe(note)}")
    if result.citations:
        with st.expander(f"Citations ({len(result.citations)})"):
            frame = pd.DataFrame([{"tool": c.tool, "name": c.name, "value": str(c.value)} for c in result.citations],
                                 columns=["tool", "name", "value"])
            table(frame, key=f"copilot-cite-{n}", file_name=f"copilot-citations-{n}")
    with st.expander(f"Validation steps ({len(result.validation)})", expanded=bool(result.refused_by)):
        st.markdown("\n".join(f"- {OUTCOME_ICON.get(s.outcome, '')} **{safe(s.step)}**: {safe(s.outcome)}"
                              + (f" · {safe(s.detail)}" if s.detail else "") for s in result.validation))
    if result.task_id and card and store is None:
        st.warning(f"Task {safe(result.task_id)}: the task store is not reachable, so its card cannot be shown.")
    elif result.task_id and card:
        try:
            task = store.get(result.task_id)
        except TaskNotFound:  # e.g. the task database was reset since the question was asked
            st.warning(f"Task {safe(result.task_id)} is no longer in the task store.")
            return
        if task.state == "pending_approval":
            cards.card(task, now, who, prefix=f"copilot-{n}-")
        else:
            st.info(f"Task {safe(task.id)} is now {safe(task.state)}.")
