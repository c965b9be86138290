"""Resilience Fabric Control Tower: `streamlit run dashboards/app.py` (or `make serve`).

Navigation and the shared filters only; every page lives in app_pages/ and reads through dashboards/data.
"""

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts only the script's folder on the path
    sys.path.insert(0, str(ROOT))

from dashboards.components import filters  # noqa: E402 - needs the path set above
from dashboards.data import root  # noqa: E402

st.set_page_config(page_title="Resilience Fabric", layout="wide")
PAGES = Path(__file__).resolve().parent / "app_pages"


def page(name: str, title: str, icon: str, default: bool = False) -> st.Page:
    return st.Page(str(PAGES / f"{name}.py"), title=title, icon=icon, default=default, url_path=name)


navigation = st.navigation(
    {
        "Fleet": [
            page("overview", "Overview", ":material/dashboard:", default=True),
            page("drift", "Drift", ":material/difference:"),
            page("compliance", "Compliance", ":material/policy:"),
            page("dr", "DR", ":material/backup:"),
            page("sites", "Sites", ":material/location_on:"),
            page("images", "Images", ":material/album:"),
        ],
        "Operate": [
            page("approvals", "Approvals", ":material/task_alt:"),
            page("audit", "Audit", ":material/receipt_long:"),
            page("copilot", "Copilot", ":material/smart_toy:"),
            page("settings", "Settings", ":material/settings:"),
        ],
    }
)
filters.sidebar(root())
navigation.run()
