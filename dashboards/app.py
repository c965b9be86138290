"""Resilience Fabric Control Tower: `streamlit run dashboards/app.py` (or `make serve`).

Navigation, identity and the shared filters only; every page lives in app_pages/ and reads through
dashboards/data. The navigation is built from the signed-in (or local) principal: a page its roles do
not allow is not registered at all (qlrf.tenancy.dashboard_identity.visible_pages).
"""

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts only the script's folder on the path
    sys.path.insert(0, str(ROOT))

from dashboards.components import filters, identity  # noqa: E402 - needs the path set above
from dashboards.data import root  # noqa: E402
from qlrf.tenancy.dashboard_identity import visible_pages  # noqa: E402
from qlrf.tenancy.readers import dashboard_reader_orgs, known_orgs, tenant_scope_of  # noqa: E402

st.set_page_config(page_title="Resilience Fabric", layout="wide")
PAGES = Path(__file__).resolve().parent / "app_pages"


def page(name: str, title: str, icon: str, default: bool = False) -> st.Page:
    return st.Page(str(PAGES / f"{name}.py"), title=title, icon=icon, default=default, url_path=name)


SECTIONS = {
    "Fleet": [("overview", "Overview", ":material/dashboard:"), ("drift", "Drift", ":material/difference:"),
              ("compliance", "Compliance", ":material/policy:"), ("dr", "DR", ":material/backup:"),
              ("sites", "Sites", ":material/location_on:"), ("images", "Images", ":material/album:")],
    "Operate": [("approvals", "Approvals", ":material/task_alt:"), ("audit", "Audit", ":material/receipt_long:"),
                ("copilot", "Copilot", ":material/smart_toy:"), ("settings", "Settings", ":material/settings:")],
}

session = identity.current()
allowed = set(visible_pages(session))  # pages the role does not allow are not in the navigation at all
sections = {name: [page(file, title, icon, default=(file == "overview")) for file, title, icon in entries if file in allowed]
            for name, entries in SECTIONS.items()}
sections = {name: pages for name, pages in sections.items() if pages}
if not sections:  # a provider is configured and nobody (usable) is signed in: only the sign-in page
    sections = {"": [st.Page(str(PAGES / "signin.py"), title="Sign in", icon=":material/login:", default=True,
                             url_path="signin")]}
navigation = st.navigation(sections)
identity.sidebar(session)
if allowed:  # every loader reads only the caller's organisations (None: a read grant on every one)
    filters.sidebar(root(), dashboard_reader_orgs(session.principal, session.provider_configured, known_orgs()))
with tenant_scope_of(session):  # on PostgreSQL: row-level security shows the caller's organisations only
    navigation.run()
