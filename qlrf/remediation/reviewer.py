"""Who is reviewing approval tasks in the dashboard, and what that identity may decide.

Superseded for the dashboard by :mod:`qlrf.tenancy.dashboard_identity` (issue 14: a Principal with
grants from sign-in claims or QLRF_DASHBOARD_LOCAL_ROLES, checked through ``authorise``); the page
helpers below (countdown, execution_note, edited_plan) and the constants are still shared.

Identity is never typed into the page: it comes from sign-in (Streamlit's ``st.user`` once the
tenancy work switches on ``st.login``) or, until then, from a trusted local single-user mode that
an operator configures (``QLRF_DASHBOARD_LOCAL_USER``). Local mode proves nothing about who sits
at the keyboard, so it may decide dev and staging plans but never production ones. With neither,
nobody can decide anything from the dashboard (the CLI still can).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import yaml

from qlrf.envparse import environ, text
from qlrf.remediation.approvals import normalise_identity
from qlrf.remediation.plans import PatchPlan, PlanError, parse_plan

ENV_LOCAL_USER = "QLRF_DASHBOARD_LOCAL_USER"
PRODUCTION = frozenset({"prod", "production"})


@dataclass(frozen=True)
class Reviewer:
    name: str | None  # normalised identity, None when nobody is identified
    mode: str  # "signed_in" | "local" | "none"

    @property
    def label(self) -> str:
        if self.mode == "signed_in":
            return f"Signed in as {self.name}"
        if self.mode == "local":
            return (f"Local single-user mode: decisions are recorded as {self.name} ({ENV_LOCAL_USER}). "
                    "Production plans need a signed-in approver.")
        return (f"No approver identity: sign-in is not configured and {ENV_LOCAL_USER} is not set, "
                "so approve, reject and modify are disabled here.")

    def refusal(self, environment: str, requested_by: str) -> str | None:
        """Why this reviewer may not decide a task in `environment` requested by `requested_by`; None if allowed."""
        if self.name is None:
            return f"approve/reject disabled: set {ENV_LOCAL_USER} (trusted local mode) or sign in"
        if self.mode == "local" and environment.lower() in PRODUCTION:
            return "production plans cannot be decided in local single-user mode: a signed-in approver is required"
        if normalise_identity(requested_by) == self.name:
            return f"you requested this plan ({self.name}): another person must decide it"
        return None


def reviewer(signed_in_email: str | None, env: Mapping[str, str] | None = None) -> Reviewer:
    """The reviewer: the signed-in user if any, else the configured local user, else nobody."""
    if signed_in_email and signed_in_email.strip():
        return Reviewer(normalise_identity(signed_in_email), "signed_in")
    local = text(environ(env), ENV_LOCAL_USER)
    if local and normalise_identity(local):
        return Reviewer(normalise_identity(local), "local")
    return Reviewer(None, "none")


def countdown(expires_at: datetime | None, now: datetime) -> str:
    """Time left before a pending approval expires, as a person reads it ("5 h 12 min left", "expired")."""
    if expires_at is None:
        return "never expires"
    left = expires_at - now
    if left <= timedelta(0):
        return "expired"
    hours, rest = divmod(int(left.total_seconds()), 3600)
    return f"{hours} h {rest // 60:02d} min left" if hours else f"{rest // 60} min left"


APPROVAL_SENSOR = "remediation_approval_sensor"


def execution_note(autonomy_mode: str, window: str) -> str:
    """When and how an approved plan would run, including that nothing runs while the sensor is stopped."""
    if autonomy_mode == "plan_only":
        return "Will not execute: the environment is plan_only (plans are recorded, never run, approved or not)."
    return (f"After approval, {APPROVAL_SENSOR} launches the execution run in the window {window}, wave by wave "
            f"with health gates ({autonomy_mode}). That sensor ships STOPPED: until someone starts it (Dagster UI > "
            f"Automation, or `dagster sensor start {APPROVAL_SENSOR}`), an approved plan does not execute.")


def edited_plan(text_: str, task_id: str) -> PatchPlan:
    """A reviewer's edit of a sealed plan, validated; its old `content_hash` is dropped (the store seals it anew).

    Why drop it: the edit changes the content, so the old hash could only ever fail the tamper check."""
    try:
        doc = yaml.safe_load(text_)
    except yaml.YAMLError as exc:
        raise PlanError(f"edited plan of {task_id}: not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise PlanError(f"edited plan of {task_id}: expected a YAML mapping (the plan document)")
    doc.pop("content_hash", None)
    return parse_plan(yaml.safe_dump(doc, sort_keys=False), f"edited plan of {task_id}")
