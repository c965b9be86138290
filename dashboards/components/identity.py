"""The principal of this browser session, from Streamlit's sign-in (``st.user``) or the trusted local mode.

The rules live in :mod:`qlrf.tenancy.dashboard_identity`; this module only hands it ``st.user``,
whether ``secrets.toml`` has an ``[auth]`` section, and the environment, and draws the sidebar's
identity line and sign-in / sign-out buttons.

``stored_grants`` is the local role table (``qlrf users``): signed-in users get its grants on top
of their token's ``qlrf_roles`` (tests may replace it with another ``name -> grants`` callable).
"""

from __future__ import annotations

import streamlit as st

from dashboards.components.text import safe
from dashboards.data import tasks
from qlrf.tenancy.dashboard_identity import LOCAL, SIGNED_IN, Session, StoredGrants, label, resolve
from qlrf.tenancy.roles import Principal


@st.cache_resource(max_entries=4)
def grant_store(url: str):
    """The role table beside the task store (same engine): built once per URL (an engine per rerun
    would cost a connection pool and a create_all check on every click), read on every rerun."""
    from qlrf.tenancy.store import GrantStore

    store = tasks.task_store(url)
    return GrantStore(engine=store.engine, audit=store.audit)


def table_grants(name: str) -> tuple:
    """The local role table's grants of `name` (``qlrf users grant``), read on every run: a revoke
    applies at the next click. An unreachable table fails closed (resolve() keeps the token's roles)."""
    return grant_store(tasks.database_url()).grants_for(name)


stored_grants: StoredGrants | None = table_grants


def provider_configured() -> bool:
    """True when ``secrets.toml`` has an ``[auth]`` section (``st.login`` can then reach a provider).

    A missing or unreadable secrets file means no provider: reading it must never break a page."""
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - Streamlit raises several types for a missing/malformed file
        return False


def auth_section() -> dict | None:
    """The ``[auth]`` section as a plain dict (for the Settings page, which masks its secrets); None without one."""
    if not provider_configured():
        return None
    section = st.secrets["auth"]
    return {k: (dict(v) if hasattr(v, "keys") else v) for k, v in section.items()}


def providers() -> list[str]:
    """Named provider sections (``[auth.keycloak]``...); empty when ``[auth]`` itself is the one provider."""
    try:
        return [name for name, value in st.secrets["auth"].items() if hasattr(value, "keys")]
    except Exception:  # noqa: BLE001 - no or malformed [auth]: no named providers
        return []


def current() -> Session:
    """This run's session: re-resolved on every run, so a role change in the token or the table applies at once."""
    user = st.user.to_dict() if hasattr(st.user, "to_dict") else dict(st.user)
    return resolve(user, provider_configured=provider_configured(), stored=stored_grants)


def principal() -> Principal:
    """Who is acting in this run, for code that needs only the Principal (``authorise(principal(), ...)``)."""
    return current().principal


def show_status(session: Session, alert: bool = False) -> None:
    """The identity and mode line; `alert` draws it as a coloured box (Approvals), else a sidebar caption."""
    text = safe(label(session))
    if alert:
        (st.success if session.mode == SIGNED_IN else st.warning if session.mode == LOCAL else st.info)(text)
    else:
        st.caption(text)


def sidebar(session: Session) -> None:
    """Who is signed in and how; sign-in / sign-out buttons only when a provider is configured."""
    with st.sidebar:
        st.markdown(f"**Identity** · {'signed in' if session.mode == SIGNED_IN else 'local single-user mode' if session.mode == LOCAL else 'anonymous'}")
        if session.problem:
            st.error(safe(label(session)))
        else:
            show_status(session)
        if session.provider_configured:
            if session.mode == SIGNED_IN or session.problem:  # a refused token still holds Streamlit's cookie
                st.button("Sign out", key="sign-out", on_click=st.logout)
            else:
                names = providers()
                for name in names or [None]:
                    st.button(f"Sign in with {name}" if name else "Sign in", key=f"sign-in-{name or 'default'}",
                              type="primary", on_click=st.login, args=(name,) if name else ())
