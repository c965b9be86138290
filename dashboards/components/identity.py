"""The reviewer of this browser session: the signed-in user when sign-in is on, else the trusted local mode."""

from __future__ import annotations

import streamlit as st

from qlrf.remediation.reviewer import Reviewer, reviewer


def signed_in_email() -> str | None:
    """The signed-in user's email (or name) when `st.login` has authenticated one; None otherwise.

    Only `is_logged_in` counts: without an [auth] section Streamlit may still expose a placeholder user."""
    if not st.user.get("is_logged_in"):
        return None
    return st.user.get("email") or st.user.get("name")


def current() -> Reviewer:
    return reviewer(signed_in_email())
