"""DR: readiness by site (inferred and proven by drills), restore-point age against the RPO, the gaps,
the drills with measured RTO/RPO, and a failover what-if for a chosen site or region."""

import pandas as pd
import streamlit as st

from dashboards.components import charts, status
from dashboards.components.tables import table
from dashboards.components.text import safe
from dashboards.data import estate
from qlrf.scoring.page_tables import AGE_BANDS

location, scope = status.page("DR readiness")
st.markdown("**DR readiness** (%): share of VMs with a restore point younger than their environment's RPO objective *and* "
            "an image they can be rebuilt from (a known, non-revoked golden image).")
status.completeness(location, scope.day, ("vm_dr", "dr_scores", "dr_breakdown"))

ready = status.load(estate.dr_by_site, location, scope)
if ready is not None and not ready.empty:
    st.subheader("Readiness by site and environment")
    charts.show(charts.heatmap(ready, "dr_readiness", "DR readiness (%)", higher_is_worse=False), key="dr-heatmap")
    table(ready, key="dr-sites", file_name=f"dr-readiness-{scope.day}")

proven = status.load(estate.dr_readiness_drills, location, scope)
if proven is not None and not proven.empty:
    st.subheader("Readiness score with drill evidence")
    st.caption("Score 0-100 = 40 x RPO met + 30 x rebuildable + 30 x drill credit. A passed drill counts fully for 30 days, "
               "then decays linearly to nothing at 180 days; a failed, timed-out or deviated drill caps its site at 50.")
    charts.show(charts.heatmap(proven, "readiness_score", "Readiness score", higher_is_worse=False), key="dr-score-heatmap")
    table(proven, key="dr-score", file_name=f"dr-readiness-score-{scope.day}")
    trend = status.load(estate.dr_readiness_history, location, scope)
    if trend is not None and not trend.empty and trend["date"].nunique() > 1:
        charts.show(charts.trend_lines(trend, "site", "readiness_score", "Readiness score"), key="dr-score-trend")

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
    drill_gaps = status.load(estate.dr_drill_gaps, location, scope)
    if drill_gaps is not None:
        st.subheader("What the drills do not prove")
        table(drill_gaps, key="dr-drill-gaps", file_name=f"dr-drill-gaps-{scope.day}")

st.subheader("Drills")
drills = status.load(estate.dr_drills, location, scope)
if drills is not None:
    if drills.empty:
        st.info("No drill recorded in the 180 days up to this day: readiness gives no drill credit. Run one with "
                "`qlrf dr drill PLAN` (the drill runs through the Rego gate and, where asked, an approval).")
    else:
        st.caption("One row per drill (its VMs rolled up): outcome, RTO median/max and RPO achieved against the drill's "
                   "objectives, and the readiness credit it still earns on this day.")
        table(drills, key="dr-drills", file_name=f"dr-drills-{scope.day}")

st.subheader("Failover what-if")
st.caption("What if this site or region were lost today: where each VM recovers (policy/dr_targets.yaml), capacity "
           "needed there, RTO from measured drills of the same platform and size class, and data at risk. "
           "The same answer as `qlrf dr simulate`.")
kind = st.radio("Lose a", ["site", "region"], horizontal=True, key="sim-kind")
if kind == "site":
    options = sorted(set(proven["site"])) if proven is not None and not proven.empty else []
else:
    options = status.load(estate.dr_regions, location, scope) or []
if options:
    preferred = scope.site if kind == "site" and scope.site in options else ("syd1" if "syd1" in options else options[0])
    value = st.selectbox(f"Which {kind}", options, index=options.index(preferred), key="sim-value")
    # On request: a simulation re-joins the whole day's vm_dr (~1.5 s for a million VMs), too slow for every
    # visit; once switched on it follows the choices above for the rest of the session.
    asked = st.toggle("Simulate", key="sim-on", help="Run the failover simulation for the chosen site or region.")
    simulated = status.load(estate.dr_simulation, location, scope.day, kind, value, scope.environment, scope.orgs) if asked else None
    if not asked:
        st.caption(f"Switch on **Simulate** to see what losing {kind} {safe(value)} would cost.")
    if simulated is not None:
        result, vms = simulated
        a, b, c, d = st.columns(4)
        a.metric("VMs affected", f"{result['affected_vms']:,}")
        b.metric("Groups breached", f"{result['groups_breached']} of {result['affected_groups']}")
        c.metric("Capacity", "fits" if all(x["fits"] for x in result["capacity"]) else "short")
        d.metric("Over RPO", f"{result['rpo']['vms_over_objective']:,}")
        if result["affected_vms"]:
            capacity = pd.DataFrame(result["capacity"]).assign(unknown_types=lambda f: f["unknown_types"].str.join(", "))
            table(capacity, key="sim-capacity", file_name=f"failover-capacity-{value}-{scope.day}")
            table(pd.DataFrame(result["rto"]), key="sim-rto", file_name=f"failover-rto-{value}-{scope.day}")
            table(pd.DataFrame(result["rpo"]["by_environment"]), key="sim-rpo", file_name=f"failover-rpo-{value}-{scope.day}")
            verdicts = pd.DataFrame([{"group": g["group"], "vms": g["vms"], "verdict": g["verdict"],
                                      "targets": ", ".join(g["targets"]),
                                      "reasons": "; ".join(f"{r['why']} ({r['vms']})" for r in g["reasons"])}
                                     for g in result["verdict"]])
            table(verdicts, key="sim-groups", file_name=f"failover-verdicts-{value}-{scope.day}")
            table(vms, key="sim-vms", file_name=f"failover-vms-{value}-{scope.day}", total=result["affected_vms"])
        else:
            st.info(f"No VM in {kind} {value} on {scope.day}.")

vms = status.load(estate.not_ready, location, scope)
if vms is not None:
    frame, total = vms
    st.subheader("VMs not ready")
    table(frame, key="not-ready", file_name=f"dr-not-ready-{scope.day}", total=total)
