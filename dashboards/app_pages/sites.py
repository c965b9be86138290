"""Sites: one site at a time (the sidebar's site filter, so `?site=lon1` links here), with its platforms,
environments, the three scores side by side, its drift history and its open tasks."""

from dataclasses import replace

import streamlit as st

from dashboards.components import charts, filters, status
from dashboards.components.tables import table
from dashboards.components.text import safe
from dashboards.data import estate, root, tasks

location = root()
st.title("Sites")
scope = filters.current()
if scope is None:
    status.no_report(location)
names = status.load(estate.site_names, location, scope.day, scope.orgs) or []
if not scope.site:
    st.info("Choose a site in the sidebar (or open a link with `?site=NAME`) to see its page.")
    sites = status.load(estate.drift_heatmap, location, replace(scope, site=None))
    if sites is not None and not sites.empty:
        per_site = sites.groupby("site", as_index=False).agg(vms=("vms", "sum"), revoked=("revoked", "sum"))
        st.caption(f"{len(names)} sites on {scope.day}, most drifted first: " + ", ".join(safe(n) for n in names))
        table(per_site, key="site-list", file_name=f"sites-{scope.day}")
    st.stop()

st.header(safe(scope.site))
st.caption(filters.describe(scope))
status.completeness(location, scope.day, ("drift_scores", "compliance_scores", "dr_scores"))
rows = status.load(estate.site_scores, location, scope)
if rows is not None:
    if rows.empty:
        st.info(f"No VM of {safe(scope.site)} matches these filters on {scope.day}.")
    else:
        vms = int(rows["vms"].sum())
        cols = st.columns(4)
        cols[0].metric("VMs", f"{vms:,}")
        cols[1].metric("Drift score", f"{(rows['drift_score'] * rows['vms']).sum() / vms:.1f}", help="0-100, lower is better")
        cols[2].metric("Compliance score", f"{(rows['compliance_score'] * rows['vms']).sum() / vms:.1f}%")
        cols[3].metric("DR readiness", f"{(rows['dr_readiness'] * rows['vms']).sum() / vms:.1f}%")
        st.markdown(f"**Platforms**: {safe(', '.join(sorted(rows['platform'].unique())))} · "
                    f"**Environments**: {safe(', '.join(sorted(rows['environment'].unique())))}")
        table(rows, key="site-scores", file_name=f"site-{scope.site}-{scope.day}")

history = status.load(estate.site_history, location, scope)
if history is not None and history["date"].nunique() > 1:
    st.subheader("Drift history")
    threshold = estate.thresholds().get(scope.environment) if scope.environment else None
    charts.show(charts.trend_lines(history, "environment", "drift_score", "drift score (0-100)", threshold), key="site-trend")

st.subheader("Open tasks")
url = tasks.database_url()
open_tasks = [t for t in tasks.task_store(url).list(("pending_approval", "approved", "running"))
              if (t.site or "").casefold() == scope.site.casefold()]
if open_tasks:
    table(tasks.task_table(open_tasks), key="site-tasks", file_name=f"site-{scope.site}-tasks")
else:
    st.caption("No open patch plan for this site.")
