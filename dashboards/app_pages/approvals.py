"""Approvals: one card per plan waiting for a human, refreshed every 30 s.

Approve, reject and modify are bound to the plan hash on the card (a plan changed since has another
hash and another task). The decider is never typed: it is the signed-in user, or the trusted local
user (QLRF_DASHBOARD_LOCAL_USER), who may not decide production plans. The page reads and writes
only through the task store, which audits every decision; it never calls a cloud or a model.
"""

from datetime import UTC, datetime, timedelta

import streamlit as st

from dashboards.components import identity
from dashboards.components.tables import table
from dashboards.components.text import safe
from dashboards.data import tasks
from qlrf.remediation.approvals import TaskStateError
from qlrf.remediation.plans import PlanError
from qlrf.remediation.reviewer import countdown, edited_plan, execution_note

RISK_COLOUR = {"low": "green", "medium": "orange", "high": "red", "critical": "violet"}

st.title("Approvals")
url = tasks.database_url()
store = tasks.task_store(url)
who = identity.current()
(st.success if who.mode == "signed_in" else st.warning if who.mode == "local" else st.info)(safe(who.label))


def decide(action: str, task_id: str, plan_hash: str, environment: str, requested_by: str) -> None:
    """Button callback: approve / reject / modify `task_id` bound to the `plan_hash` on its card."""
    reviewer = identity.current()  # re-checked here: a disabled button is a hint, this is the rule
    refusal = reviewer.refusal(environment, requested_by)
    reason = (st.session_state.get(f"reason-{task_id}") or "").strip()
    if refusal:
        st.session_state["review_flash"] = ("error", f"{task_id}: {refusal}")
        return
    if not reason:
        st.session_state["review_flash"] = ("error", f"{task_id}: give a reason: it is recorded with the decision.")
        return
    try:
        if action == "modify":
            edited = edited_plan(st.session_state.get(f"edit-{task_id}") or "", task_id)
            task = store.modify(task_id, plan_hash, edited, reviewer.name, reason)
            message = f"{task_id} superseded by {task.id} (pending approval by someone else)."
        else:
            task = (store.approve if action == "approve" else store.reject)(task_id, plan_hash, reviewer.name, reason)
            message = f"{task.plan_id}: {task.state} by {reviewer.name}."
    except (TaskStateError, PlanError, ValueError) as exc:
        st.session_state["review_flash"] = ("error", str(exc).splitlines()[0])
        return
    st.session_state["review_flash"] = ("success", message)
    st.session_state.pop(f"reason-{task_id}", None)
    tasks.audit_verification.clear()


def patch_details(task) -> bool:
    """A patch plan's targets, waves, gate decisions and YAML; False when the stored plan cannot be reviewed."""
    try:
        view = tasks.plan_view(task)
    except (ValueError, TaskStateError) as exc:  # a stored plan that no longer validates against its hash
        st.error(f"{task.id}: the stored plan cannot be reviewed: {safe(str(exc).splitlines()[0])}")
        return False
    st.markdown(safe(view["reason"]))
    cols = st.columns(4)
    cols[0].metric("Targets", f"{view['targets_count']:,}")
    cols[1].metric("Waves", len(view["waves"]))
    cols[2].metric("Autonomy mode", task.autonomy_mode)
    cols[3].metric("Requested by", task.requested_by)
    st.markdown(f"**From** {safe(view['from_images'])}  \n**To** {safe(view['to_image'])}")
    decisions = [f"- needs approval: {safe(r)}" for r in view["approval_reasons"]] + [f"- denied: {safe(r)}" for r in view["deny"]]
    st.markdown("**Gate decisions**\n" + ("\n".join(decisions) if decisions else "- allowed without conditions"))
    st.caption(f"Plan hash `{task.plan_hash}` · window {safe(view['window'])} · health gate {safe(view['health_gate'])} · "
               f"rollback: {safe(view['rollback'])}")
    st.markdown(f"**Execution**: {safe(execution_note(task.autonomy_mode, view['window']))}")
    table(view["waves"], key=f"waves-{task.id}", file_name=f"{task.plan_id}-waves")
    with st.expander(f"Targets ({view['targets_count']:,})"):
        table(view["targets"].head(1000), key=f"targets-{task.id}", file_name=f"{task.plan_id}-targets",
              total=view["targets_count"])
    with st.expander("Plan YAML"):
        st.code(task.plan_yaml, language="yaml")
    return True


def other_details(task, kind: str) -> None:
    """A task that is not a patch plan (an AI task, once the task store holds them): its sealed document as data."""
    cols = st.columns(3)
    cols[0].metric("Kind", kind)
    cols[1].metric("Autonomy mode", task.autonomy_mode)
    cols[2].metric("Requested by", task.requested_by)
    reasons = [str(r) for r in (task.decision or {}).get("approval_reasons") or []]
    st.markdown("**Gate decisions**\n" + ("\n".join(f"- needs approval: {safe(r)}" for r in reasons) or "- none recorded"))
    st.caption(f"Content hash `{task.plan_hash}` · no executor in this dashboard: the decision is recorded, nothing runs from here")
    with st.expander("Sealed document"):
        st.code(task.plan_yaml, language="json")


def card(task, now: datetime) -> None:
    kind = getattr(task, "kind", "patch_plan")
    # An unknown environment is treated as production: local mode must not decide what it cannot place.
    environment = task.environment or "prod"
    with st.container(border=True):
        head = st.columns([4, 1, 2])
        head[0].markdown(f"**{safe(task.plan_id)}** · {safe(environment)} / {safe(task.platform or '-')} / {safe(task.site or '-')}")
        head[1].badge(f"risk {task.risk_level}", color=RISK_COLOUR.get(task.risk_level, "gray"))
        head[2].markdown(f"⏳ {countdown(task.expires_at, now)}")
        if kind == "patch_plan":
            if not patch_details(task):
                return
        else:
            other_details(task, kind)
        refusal = who.refusal(environment, task.requested_by)
        st.text_input("Reason (recorded with the decision)", key=f"reason-{task.id}", disabled=bool(refusal),
                      placeholder="what you checked")
        args = (task.id, task.plan_hash, environment, task.requested_by)
        left, middle, _ = st.columns([1, 1, 3])
        left.button("Approve", key=f"approve-{task.id}", type="primary", disabled=bool(refusal), help=refusal,
                    on_click=decide, args=("approve", *args))
        middle.button("Reject", key=f"reject-{task.id}", disabled=bool(refusal), help=refusal, on_click=decide, args=("reject", *args))
        if kind == "patch_plan":
            with st.expander("Modify the plan"):
                st.text_area("Edited plan YAML (a new task is created; someone else must approve it)", task.plan_yaml,
                             key=f"edit-{task.id}", height=300, disabled=bool(refusal))
                st.button("Submit modified plan", key=f"modify-{task.id}", disabled=bool(refusal), help=refusal,
                          on_click=decide, args=("modify", *args))
        if refusal:
            st.caption(safe(refusal))


@st.fragment(run_every=timedelta(seconds=30))
def queue() -> None:
    """Pending plans; refreshed on its own so a reviewer sees new plans and expiries without reloading."""
    flash = st.session_state.pop("review_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(safe(flash[1]))
    now = datetime.now(UTC)  # the page is where the clock enters; the store itself uses the database's time
    pending = store.list("pending_approval")
    st.subheader(f"Waiting for approval ({len(pending)})")
    if not pending:
        st.info("No patch plan is waiting for approval. Plans appear here when drift_findings_sensor finds a breach "
                "and the policy asks for a human.")
    for task in pending:
        card(task, now)


queue()

st.subheader("Recently decided")
decided = sorted((t for t in store.list() if t.state != "pending_approval"), key=lambda t: t.updated_at, reverse=True)
if decided:
    table(tasks.task_table(decided[:25]), key="decided", file_name="decided-tasks")
else:
    st.caption("No decided plan yet.")
st.page_link("app_pages/audit.py", label="Full audit trail", icon=":material/receipt_long:")
