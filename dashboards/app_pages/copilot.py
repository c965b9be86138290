"""Copilot: ask in plain language; answers grounded in tool results, action requests become approval tasks.

Each question goes through the AI orchestrator (qlrf.ai.orchestrator): screening, the proposer (a
configured model, else the offline router), scope, policy and only then the task store. The asker
is the signed-in user or the trusted local user; with neither, questions are answered read-only
and an action request is refused at the task step. A task the copilot proposes appears as the
Approvals page's card, and its requester cannot decide it. The orchestrator answers whole: the
answer is streamed onto the page in pieces for reading, not as model tokens.
"""

from datetime import UTC, datetime

import streamlit as st

from dashboards.components import cards, chat, identity
from dashboards.components.text import safe
from dashboards.data import copilot, estate, root, tasks
from qlrf.ai.copilot import ask_as, model_status, suggested_prompts
from qlrf.tenancy.dashboard_identity import SIGNED_IN, may_anywhere
from qlrf.views.base import DataProblem
from qlrf.views.insights import SEVERITY_COLOUR

HISTORY, PENDING = "copilot_history", "copilot_pending"
LINK_PARAM = "ask"  # ?ask=<intent>: the Overview's "Ask the copilot" links, run once


def send(intent: str) -> None:
    """Button callback: the intent is asked on this run, as if typed."""
    st.session_state[PENDING] = intent


st.title("Copilot")
location, url, who = root(), tasks.database_url(), identity.current()
days = estate.dates(location)
day = days[0] if days else None
model = model_status()
reachable, store_line = copilot.store_status(url)
insights, insights_problem = None, ""
if day:
    try:
        insights = estate.proactive_insights(location, day)
    except DataProblem as exc:
        insights_problem = str(exc)

with st.sidebar:
    st.header("Context")
    st.markdown(f"**Model**: {safe(model)}  \n**Data**: {safe(day) + ' (newest materialised day)' if day else 'none yet'}  \n"
                f"**Tasks**: {safe(store_line)}")
    st.header("Proactive insights")
    if insights is None:
        st.caption(safe(insights_problem) if day else "None yet: insights come with the first daily run.")
    elif insights.empty:
        st.caption(f"Nothing needs attention on {day}.")
    for _, r in (insights.head(8).iterrows() if insights is not None else ()):
        with st.container(border=True):
            st.badge(f"#{r['rank']} {r['severity']}", color=SEVERITY_COLOUR.get(r["severity"], "gray"))
            st.markdown(safe(r["title"]))
            st.caption(f"{safe(r['agent'])} agent · {safe(r['task_type'])}")
            st.button("Ask", key=f"insight-{r['rank']}", on_click=send, args=(r["intent"],), help=safe(r["intent"]))

# Proposals need the operator role somewhere; below it the copilot answers as nobody, so the orchestrator
# refuses an action request at the task step (its one rule), and the page says why.
asker = who.name if may_anywhere(who, "propose") else None
if who.name is None:
    st.info("No identity (sign-in is off and QLRF_DASHBOARD_LOCAL_USER is not set): read-only questions are answered; "
            "action requests need sign-in.")
elif asker is None:
    st.info(f"Signed in as {safe(who.name)} without the operator role: read-only questions are answered; "
            "proposing a task needs the operator role.")
else:
    st.caption(f"Asking as **{safe(who.name)}** ({'signed in' if who.mode == SIGNED_IN else 'local single-user mode'}): "
               "proposed tasks wait for someone else's approval.")
if not reachable:
    st.warning(f"{safe(store_line)}: the copilot records every question and task there, so it cannot answer until "
               "the database is back (check QLRF_POSTGRES_URL).")
if day is None:
    st.info(f"No fleet report in {safe(location)} yet: the copilot answers from the warehouse. Run `make run` "
            "(or `qlrf run --date YYYY-MM-DD`) to produce one.")
    st.stop()
linked = st.query_params.get(LINK_PARAM)
if linked:
    del st.query_params[LINK_PARAM]  # once: a rerun or a reload does not ask again
    st.session_state[PENDING] = linked

history: list = st.session_state.setdefault(HISTORY, [])
prompts = suggested_prompts(list(insights["intent"]) if insights is not None else [])
with st.expander("Suggested questions", expanded=not history):
    cols = st.columns(2)
    for i, prompt in enumerate(prompts):
        cols[i % 2].button(safe(prompt), key=f"prompt-{i}", on_click=send, args=(prompt,), width="stretch")

cards.flash()
now = datetime.now(UTC)  # the page is where the clock enters (approval countdowns)
store = tasks.task_store(url) if reachable else None
newest_card = {result.task_id: n for n, (_, result) in enumerate(history) if result.task_id}
for n, (intent, result) in enumerate(history):
    with st.chat_message("user"):
        st.markdown(safe(intent))
    with st.chat_message("assistant"):
        chat.show(result, n, stream=False, store=store, who=who, now=now, card=newest_card.get(result.task_id) == n)

typed = st.chat_input("Ask about drift, compliance, DR, images, costs… or ask for a fix")
intent = typed or st.session_state.pop(PENDING, None)
if intent:
    with st.chat_message("user"):
        st.markdown(safe(intent))
    with st.chat_message("assistant"):
        with st.spinner("Checking the warehouse…"):
            try:
                result = ask_as(copilot.orchestrator(location, day, model, url), intent, asker)
            except Exception as exc:  # noqa: BLE001 - the page's edge: one line on screen, never a traceback
                st.error(f"The copilot could not answer: {safe(copilot.one_line(exc))}")
                st.stop()
        chat.show(result, len(history), stream=True, store=store, who=who, now=now)
    history.append((intent, result))
