"""Approval cards: one pending task, its plan or sealed document, and approve / reject / modify.

Shared by the Approvals page and the Copilot (a task the copilot proposed shows as the same card).
Every decision is bound to the plan hash on the card; the decider is never typed: it is the
signed-in user, or the trusted local user (QLRF_DASHBOARD_LOCAL_USER), who may not decide
production plans, and nobody decides a task they requested (the task store refuses too).
``prefix`` keeps widget keys apart when one page could show the same task twice.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from dashboards.components import identity
from dashboards.components.tables import table
from dashboards.components.text import safe
from dashboards.data import tasks
from qlrf.remediation.approvals import TaskStateError
from qlrf.remediation.plans import PlanError
from qlrf.remediation.reviewer import countdown, edited_plan, execution_note
from qlrf.tenancy.dashboard_identity import Session, decision_refusal, task_org, task_project
from qlrf.tenancy.enforce import deny_record
from qlrf.tenancy.readers import tenant_scope_of

RISK_COLOUR = {"low": "green", "medium": "orange", "high": "red", "critical": "violet"}
FLASH = "review_flash"


def flash() -> None:
    """The outcome of the last decision made on this page (set by the button callback), shown once."""
    shown = st.session_state.pop(FLASH, None)
    if shown:
        (st.success if shown[0] == "success" else st.error)(safe(shown[1]))


def decide(action: str, task_id: str, plan_hash: str, environment: str, requested_by: str, prefix: str = "",
           org: str = "*", project: str | None = None) -> None:
    """Button callback: approve / reject / modify `task_id` bound to the `plan_hash` on its card.

    Callbacks run before the page script, outside its tenant scope: the decision opens its own
    (on PostgreSQL, row-level security then lets it touch only the caller's organisations' rows)."""
    session = identity.current()  # re-checked here: a hidden or disabled button is a hint, this is the rule
    with tenant_scope_of(session):
        _decide(session, action, task_id, plan_hash, environment, requested_by, prefix, org, project)


def _decide(session: Session, action: str, task_id: str, plan_hash: str, environment: str, requested_by: str,
            prefix: str, org: str, project: str | None) -> None:
    store = tasks.task_store(tasks.database_url())
    reviewer = session.principal
    refusal = decision_refusal(session, org, environment, requested_by, project)
    reason = (st.session_state.get(f"{prefix}reason-{task_id}") or "").strip()
    if refusal:
        st.session_state[FLASH] = ("error", f"{task_id}: {refusal}")
        # Reaching the callback past a hidden/disabled control (a role revoked mid-session, a forged
        # request) is an access attempt: recorded in the audit chain, nothing else changes.
        deny_record(store.audit, who=reviewer.name, action="approve", org=org, project=project, why=refusal,
                    subject=task_id, mode=session.mode)
        return
    if not reason:
        st.session_state[FLASH] = ("error", f"{task_id}: give a reason: it is recorded with the decision.")
        return
    try:
        if action == "modify":
            edited = edited_plan(st.session_state.get(f"{prefix}edit-{task_id}") or "", task_id)
            task = store.modify(task_id, plan_hash, edited, reviewer.name, reason)
            message = f"{task_id} superseded by {task.id} (pending approval by someone else)."
        else:
            task = (store.approve if action == "approve" else store.reject)(task_id, plan_hash, reviewer.name, reason)
            message = f"{task.plan_id}: {task.state} by {reviewer.name}."
    except (TaskStateError, PlanError, ValueError) as exc:
        st.session_state[FLASH] = ("error", str(exc).splitlines()[0])
        return
    st.session_state[FLASH] = ("success", message)
    st.session_state.pop(f"{prefix}reason-{task_id}", None)
    tasks.audit_verification.clear()


def canary_note(decision: dict) -> str:
    """What the canary-only run did before this approval (the later waves wait for it), in one line."""
    canary = decision.get("canary")
    if canary:
        verdict = "passed" if canary.get("passed") else (
            "INCONCLUSIVE (canary analysis: nothing rolled back; approving re-runs the canary wave with its analysis)"
            if canary.get("inconclusive") else "FAILED (rolled back; the plan is rejected)")
        return f"{verdict} at {canary.get('at', '?')}: {canary.get('reason') or canary.get('state') or '-'}"
    if decision.get("canary_allowed"):
        return "allowed to run before the approval; no verdict yet (the approval sensor launches it)"
    return "runs after the approval, as the first wave"


def patch_details(task, prefix: str = "") -> bool:
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
    st.markdown(f"**Canary**: {safe(canary_note(task.decision or {}))}")
    table(view["waves"], key=f"{prefix}waves-{task.id}", file_name=f"{task.plan_id}-waves")
    with st.expander(f"Targets ({view['targets_count']:,})"):
        table(view["targets"].head(1000), key=f"{prefix}targets-{task.id}", file_name=f"{task.plan_id}-targets",
              total=view["targets_count"])
    with st.expander("Plan YAML"):
        st.code(task.plan_yaml, language="yaml")
    return True


def other_details(task, kind: str) -> None:
    """A task that is not a patch plan (an AI task): its sealed document as data."""
    cols = st.columns(3)
    cols[0].metric("Kind", kind)
    cols[1].metric("Autonomy mode", task.autonomy_mode)
    cols[2].metric("Requested by", task.requested_by)
    reasons = [str(r) for r in (task.decision or {}).get("approval_reasons") or []]
    st.markdown("**Gate decisions**\n" + ("\n".join(f"- needs approval: {safe(r)}" for r in reasons) or "- none recorded"))
    st.caption(f"Content hash `{task.plan_hash}` · no executor in this dashboard: the decision is recorded, nothing runs from here")
    with st.expander("Sealed document"):
        st.code(task.plan_yaml, language="json")


def card(task, now: datetime, who: Session, prefix: str = "") -> None:
    """One pending task as a card.

    The decision controls are not drawn at all for someone without the approver role in the task's
    organisation; they are drawn disabled, with the reason, when an approver may not decide this one
    (local mode on production, their own request)."""
    kind = getattr(task, "kind", "patch_plan")
    # An unknown environment is treated as production: local mode must not decide what it cannot place.
    environment = task.environment or "prod"
    with st.container(border=True):
        head = st.columns([4, 1, 2])
        head[0].markdown(f"**{safe(task.plan_id)}** · {safe(environment)} / {safe(task.platform or '-')} / {safe(task.site or '-')}")
        head[1].badge(f"risk {task.risk_level}", color=RISK_COLOUR.get(task.risk_level, "gray"))
        head[2].markdown(f"⏳ {countdown(task.expires_at, now)}")
        if kind == "patch_plan":
            if not patch_details(task, prefix):
                return
        else:
            other_details(task, kind)
        org, project = task_org(task), task_project(task)
        if who.principal.name is None or not who.principal.may("approve", org, project):
            st.caption(safe(decision_refusal(who, org, environment, task.requested_by, project) or ""))
            return
        refusal = decision_refusal(who, org, environment, task.requested_by, project)
        st.text_input("Reason (recorded with the decision)", key=f"{prefix}reason-{task.id}", disabled=bool(refusal),
                      placeholder="what you checked")
        args = (task.id, task.plan_hash, environment, task.requested_by, prefix, org, project)
        left, middle, _ = st.columns([1, 1, 3])
        left.button("Approve", key=f"{prefix}approve-{task.id}", type="primary", disabled=bool(refusal), help=refusal,
                    on_click=decide, args=("approve", *args))
        middle.button("Reject", key=f"{prefix}reject-{task.id}", disabled=bool(refusal), help=refusal, on_click=decide,
                      args=("reject", *args))
        if kind == "patch_plan":
            with st.expander("Modify the plan"):
                st.text_area("Edited plan YAML (a new task is created; someone else must approve it)", task.plan_yaml,
                             key=f"{prefix}edit-{task.id}", height=300, disabled=bool(refusal))
                st.button("Submit modified plan", key=f"{prefix}modify-{task.id}", disabled=bool(refusal), help=refusal,
                          on_click=decide, args=("modify", *args))
        if refusal:
            st.caption(safe(refusal))
