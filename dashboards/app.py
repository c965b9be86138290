"""Resilience Fabric dashboard entry point: `streamlit run dashboards/app.py`."""

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts only the script's folder on the path
    sys.path.insert(0, str(ROOT))

st.set_page_config(page_title="Resilience Fabric", layout="wide")
PAGES = Path(__file__).resolve().parent / "app_pages"
navigation = st.navigation(
    [
        st.Page(str(PAGES / "fleet.py"), title="Fleet report", default=True),
        st.Page(str(PAGES / "approvals.py"), title="Approvals"),
    ]
)
navigation.run()
