"""Approvals: one card per plan waiting for a human, refreshed every 30 s.

Approve, reject and modify are bound to the plan hash on the card (a plan changed since has another
hash and another task). The decider is never typed: it is the signed-in user, or the trusted local
user (QLRF_DASHBOARD_LOCAL_USER), who may not decide production plans. The page reads and writes
only through the task store, which audits every decision; it never calls a cloud or a model.
"""

from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboards.components import cards, identity
from dashboards.components.tables import table
from dashboards.data import tasks

st.title("Approvals")
url = tasks.database_url()
store = tasks.task_store(url)
who = identity.current()
identity.show_status(who, alert=True)


@st.fragment(run_every=timedelta(seconds=30))
def queue() -> None:
    """Pending plans; refreshed on its own so a reviewer sees new plans and expiries without reloading."""
    cards.flash()
    now = datetime.now(UTC)  # the page is where the clock enters; the store itself uses the database's time
    pending = store.list("pending_approval")
    st.subheader(f"Waiting for approval ({len(pending)})")
    if not pending:
        st.info("No patch plan is waiting for approval. Plans appear here when drift_findings_sensor finds a breach "
                "and the policy asks for a human.")
    for task in pending:
        cards.card(task, now, who)


queue()

st.subheader("Recently decided")
decided = sorted((t for t in store.list() if t.state != "pending_approval"), key=lambda t: t.updated_at, reverse=True)
if decided:
    table(tasks.task_table(decided[:25]), key="decided", file_name="decided-tasks")
else:
    st.caption("No decided plan yet.")
st.page_link("app_pages/audit.py", label="Full audit trail", icon=":material/receipt_long:")
