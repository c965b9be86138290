"""The filters every page shares (date, site, environment, platform), kept in the URL.

They are drawn once in the entry file's sidebar with ``bind="query-params"``, so they survive page
switches and a copied link reproduces the view (``?date=2026-11-20&site=lon1``). A value missing
from the day's data (an old link) is dropped by Streamlit and the filter falls back to "all".
"""

from __future__ import annotations

import streamlit as st

from dashboards.data import estate
from qlrf.platforms import PLATFORMS
from qlrf.views.base import DataProblem, Scope

ALL = "all"
ENVIRONMENTS = ("prod", "staging", "dev")
_SCOPE = "_scope"


def sidebar(root: str, orgs: tuple[str, ...] | None = None) -> Scope | None:
    """Draw the filters; the chosen scope (None when the warehouse holds no report yet)."""
    days = estate.dates(root)
    with st.sidebar:
        st.header("Filters")
        if not days:
            st.caption("No fleet report yet: filters appear after the first run.")
            st.session_state[_SCOPE] = None
            return None
        day = st.selectbox("Date", days, key="date", bind="query-params", help="Newest first; each day is one daily run.")
        try:
            names = estate.site_names(root, day, orgs)
        except DataProblem:
            names = []
        site = st.selectbox("Site", [ALL, *sorted(names)], key="site", bind="query-params")
        environment = st.selectbox("Environment", [ALL, *ENVIRONMENTS], key="environment", bind="query-params")
        platform = st.selectbox("Platform", [ALL, *PLATFORMS], key="platform", bind="query-params")
    # `orgs`: the signed-in caller's readable organisations (None = unrestricted); every loader filters by it.
    scope = Scope(day, *(None if v == ALL else v for v in (site, environment, platform)), orgs=orgs)
    st.session_state[_SCOPE] = scope
    return scope


def current() -> Scope | None:
    """The scope the sidebar chose on this run."""
    return st.session_state.get(_SCOPE)


def describe(scope: Scope) -> str:
    parts = [f"{name} {value}" for name, value in (("site", scope.site), ("environment", scope.environment),
                                                       ("platform", scope.platform)) if value]
    return f"{scope.day}" + (f" · {', '.join(parts)}" if parts else " · whole fleet")
