"""Fleet report for a chosen date: the four questions, per platform, and the most drifted sites."""

import streamlit as st

from dashboards import data
from dashboards.components.text import safe
from qlrf.settings import Settings

root = Settings.from_env().warehouse
st.title("Fleet report")
dates = data.report_dates(root)
if not dates:
    st.info(f"No fleet report in {root} yet. Run `make run` (or `qlrf run`) first.")
    st.stop()

day = st.selectbox("Date", dates, key="date")
summary, sites = data.fleet(root, day)
fleet = summary[summary["platform"] == "all"].iloc[0]

cols = st.columns(4)
cols[0].metric("VMs", f"{int(fleet['vms']):,}")
cols[1].metric("On current golden image", f"{fleet['pct_current_golden']:.1f}%")
cols[2].metric("Compliance score", f"{fleet['compliance_score']:.1f}%")
cols[3].metric("DR readiness", f"{fleet['dr_readiness']:.1f}%")

URGENCY = {"now": "Now", "this_week": "This week", "later": "Later"}
ai = data.fleet_summary(root, day)  # written by the fleet_summary asset; no model is called here
if ai:
    st.subheader("Summary")
    st.markdown(f"**{safe(ai['headline'])}**")
    for paragraph in ai["paragraphs"]:
        st.markdown(safe(paragraph))
    st.markdown("\n".join(
        f"- **{URGENCY.get(a['urgency'], safe(a['urgency']))}**: {safe(a['title'])}. {safe(a['why'])}" for a in ai["actions"]
    ))
    if ai["source"] == "model":
        st.caption(f"Source: model {safe(ai['model'])}, every number checked against the report.")
    else:
        st.caption("Source: rules" + (f" (model not used: {safe('; '.join(ai['problems']))})" if ai["problems"] else ""))

st.subheader("By platform")
st.dataframe(summary, hide_index=True, key="platforms")

st.subheader("Most drifted sites")
top = st.slider("Sites to show", 1, max(1, len(sites)), min(5, len(sites)), key="top")
st.dataframe(sites.head(top), hide_index=True, key="sites")

drift = data.scores(root, day, "drift_scores")
if not drift.empty:
    st.subheader("Drift score by site and environment")
    pivot = drift.pivot_table(index="site", columns="environment", values="drift_score", aggfunc="mean").round(1)
    st.dataframe(pivot, key="drift_pivot")

trends = data.daily_table(root, day, "drift_trends")
if not trends.empty:
    st.subheader("Drift a week ahead")
    st.caption(f"Method: {safe(trends['method'].iloc[0])} (per site x environment; carry-forward where history is short).")
    st.dataframe(trends[["site", "environment", "drift_score", "change_per_week", "forecast_next_week", "trend"]].head(10),
                 hide_index=True)
