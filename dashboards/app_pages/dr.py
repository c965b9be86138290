"""DR: readiness by site, restore-point age against each environment's RPO objective, and the gaps."""

import streamlit as st

from dashboards.components import charts, status
from dashboards.components.tables import table
from dashboards.data import estate
from qlrf.views.dr import AGE_BANDS

location, scope = status.page("DR readiness")
st.markdown("**DR readiness** (%): share of VMs with a restore point younger than their environment's RPO objective *and* "
            "an image they can be rebuilt from (a known, non-revoked golden image).")
status.completeness(location, scope.day, ("vm_dr", "dr_scores"))

ready = status.load(estate.dr_by_site, location, scope)
if ready is not None and not ready.empty:
    st.subheader("Readiness by site and environment")
    charts.show(charts.heatmap(ready, "dr_readiness", "DR readiness (%)", higher_is_worse=False), key="dr-heatmap")
    table(ready, key="dr-sites", file_name=f"dr-readiness-{scope.day}")

bands = status.load(estate.rpo_bands, location, scope)
if bands is not None and not bands.empty:
    st.subheader("Restore-point age against the RPO objective")
    bands = bands.assign(band_order=bands["band"].map({b: i for i, b in enumerate(AGE_BANDS)}),
                         environment=bands["environment"] + " (RPO " + bands["rpo_hours"].astype(str) + " h)")
    charts.show(charts.stacked_share(bands, "environment", "band", "vms", list(AGE_BANDS), "share of VMs"), key="rpo-chart")
    table(bands.drop(columns=["band_order"]), key="rpo", file_name=f"rpo-age-{scope.day}")

left, right = st.columns(2)
with left:
    gaps = status.load(estate.dr_gaps, location, scope)
    if gaps is not None:
        st.subheader("Why VMs are not ready")
        table(gaps, key="dr-gaps", file_name=f"dr-gaps-{scope.day}")
with right:
    st.subheader("Drills and failover what-if")
    st.info("Not available yet: DR drills with measured RTO/RPO and the failover simulation arrive with the DR drill "
            "work (issue 13). Until then this page shows readiness and restore-point ages only.")

vms = status.load(estate.not_ready, location, scope)
if vms is not None:
    frame, total = vms
    st.subheader("VMs not ready")
    table(frame, key="not-ready", file_name=f"dr-not-ready-{scope.day}", total=total)
