"""Approvals: patch plans waiting for a human, with their targets, waves and the policy's reasons.

Approve and reject are bound to the plan hash shown here (a plan changed since has another hash
and another task). The page reads and writes only through the task store (qlrf.remediation.approvals), which
audits every decision; it never calls a cloud or a model.
"""

import streamlit as st

from dashboards import data
from dashboards.components.text import safe
from qlrf.remediation.approvals import TaskStateError, normalise_identity

st.title("Approvals")
url = data.database_url()
store = data.task_store(url)


def review(action: str, task_id: str, plan_hash: str) -> None:
    """Button callback: approve or reject `task_id`, bound to the `plan_hash` the reviewer saw."""
    approver = normalise_identity(st.session_state.get("approver") or "")  # as the store records it
    reason = (st.session_state.get("reason") or "").strip()
    if not approver:
        st.session_state["review_flash"] = ("error", "Enter your name as the approver: the decision is recorded under it.")
        return
    if not reason:
        st.session_state["review_flash"] = ("error", "Give a reason: it is recorded with the decision.")
        return
    decide = store.approve if action == "approve" else store.reject
    try:
        task = decide(task_id, plan_hash, approver, reason)
    except TaskStateError as exc:
        st.session_state["review_flash"] = ("error", str(exc))
        return
    st.session_state["review_flash"] = ("success", f"{task.plan_id}: {task.state} by {approver}.")
    st.session_state["reason"] = ""


flash = st.session_state.pop("review_flash", None)
if flash:
    (st.success if flash[0] == "success" else st.error)(safe(flash[1]))

pending = store.list("pending_approval")
st.subheader(f"Waiting for approval ({len(pending)})")
if not pending:
    st.info("No patch plan is waiting for approval. Plans appear here when drift_findings_sensor finds a breach "
            "and the policy asks for a human.")
else:
    st.dataframe(data.task_table(pending), hide_index=True, key="pending")
    labels = {t.id: f"{t.plan_id} · {t.environment}/{t.platform}/{t.site or '-'} · risk {t.risk_level}" for t in pending}
    task_id = st.selectbox("Plan to review", list(labels), format_func=labels.get, key="task")
    task = next(t for t in pending if t.id == task_id)
    try:
        view = data.plan_view(task)
    except ValueError as exc:  # a stored plan that no longer validates against its hash
        st.error(f"{task.id}: the stored plan cannot be reviewed: {exc}")
        view = None
    if view is not None:
        st.markdown(f"**{safe(task.plan_id)}**: {safe(view['reason'])}")
        cols = st.columns(4)
        cols[0].metric("Risk", task.risk_level)
        cols[1].metric("Autonomy mode", task.autonomy_mode)
        cols[2].metric("Targets", f"{view['targets_count']:,}")
        cols[3].metric("Waves", len(view["waves"]))
        st.markdown(f"**From** {safe(view['from_images'])}  \n**To** {safe(view['to_image'])}")
        expires = task.expires_at.strftime("%Y-%m-%d %H:%M UTC") if task.expires_at else "never"
        st.caption(
            f"Plan hash `{task.plan_hash}` · requested by {safe(task.requested_by)} · expires {expires} · "
            f"window {safe(view['window'])} · health gate {safe(view['health_gate'])} · rollback: {safe(view['rollback'])}"
        )
        if view["approval_reasons"] or view["deny"]:
            st.markdown("**Policy decision**\n" + "\n".join(
                [f"- needs approval: {safe(r)}" for r in view["approval_reasons"]] + [f"- denied: {safe(r)}" for r in view["deny"]]
            ))
        st.dataframe(view["waves"], hide_index=True, key="waves")
        with st.expander(f"Targets ({view['targets_count']:,})"):
            st.dataframe(view["targets"].head(1000), hide_index=True, key="targets")
        st.text_input("Approver", key="approver", placeholder="your name or email")
        st.text_input("Reason", key="reason", placeholder="what you checked")
        left, right = st.columns(2)
        left.button("Approve", key="approve", type="primary", on_click=review, args=("approve", task.id, task.plan_hash))
        right.button("Reject", key="reject", on_click=review, args=("reject", task.id, task.plan_hash))

st.subheader("Recently decided")
decided = sorted((t for t in store.list() if t.state != "pending_approval"), key=lambda t: t.updated_at, reverse=True)
if decided:
    st.dataframe(data.task_table(decided[:25]), hide_index=True, key="decided")
else:
    st.caption("No decided plan yet.")

st.subheader("Recent audit entries")
st.dataframe(data.audit_entries(url), hide_index=True, key="audit")
