"""Overview: the four headline numbers with their change since the previous run, 30-day trends,
the stored AI summary, insights from the forecasts, and the top actions."""

import streamlit as st

from dashboards.components import charts, status
from dashboards.components.tables import table
from dashboards.components.text import safe
from dashboards.data import estate
from qlrf.views.base import DataProblem
from qlrf.views.health import PER_PLATFORM
from qlrf.views.insights import SEVERITY_COLOUR
from qlrf.views.overview import HEADLINES

location, scope = status.page("Overview", "numbers for the chosen platform (or all); site and environment apply below the headline")
status.completeness(location, scope.day, PER_PLATFORM + ("fleet_report", "fleet_sites"))

loaded = status.load(estate.headlines, location, scope)
if loaded:
    vms, vms_delta, items, before = loaded
    cols = st.columns(5)
    cols[0].metric("VMs", f"{vms:,}", None if vms_delta is None else f"{vms_delta:+,}", delta_color="off")
    for col, h in zip(cols[1:], items, strict=True):
        delta = None if h.delta is None else f"{h.delta:+.1f} {'pts' if h.unit == '%' else ''}".strip()
        inverse = h.key == "drift_score"  # a rising drift score is bad news
        col.metric(h.label, f"{h.value:.1f}{h.unit}", delta, delta_color="inverse" if inverse else "normal", help=h.explanation)
    st.caption(("Change since " + before) if before else "No earlier run to compare with: deltas appear from the second day.")

    history = estate.fleet_history(location, scope.day, scope.platform, scope.orgs)
    if len(history) > 1:
        st.subheader(f"Last {len(history)} days")
        cols = st.columns(4)
        for col, (key, (label, unit, _)) in zip(cols, HEADLINES.items(), strict=True):
            with col:
                charts.show(charts.sparkline(history, key, label, unit), key=f"spark-{key}")

summary = estate.summary(location, scope.day, scope.orgs)
URGENCY = {"now": "Now", "this_week": "This week", "later": "Later"}
st.subheader("Summary")
if summary is None:
    st.info(f"No AI summary for {scope.day}: the fleet_summary asset has not run (`qlrf run --date {scope.day}`).")
else:
    st.markdown(f"**{safe(summary['headline'])}**")
    for paragraph in summary["paragraphs"]:
        st.markdown(safe(paragraph))
    if summary["source"] == "model":
        st.caption(f"Source: model {safe(summary['model'])}, every number checked against the report.")
    else:
        st.caption("Source: rules" + (f" (model not used: {safe('; '.join(summary['problems']))})" if summary["problems"] else ""))

left, right = st.columns(2)
with left:
    st.subheader("Top actions")
    if summary and summary["actions"]:
        st.markdown("\n".join(
            f"- **{URGENCY.get(a['urgency'], safe(a['urgency']))}**: {safe(a['title'])}. {safe(a['why'])}" for a in summary["actions"]
        ))
    else:
        st.caption("No action recorded for this day.")
with right:
    st.subheader("Insights")
    forecast = status.load(estate.forecasts, location, scope)
    if forecast is not None:
        crossing = forecast[forecast["crosses_threshold"]]
        if crossing.empty:
            st.caption("No site x environment is forecast to cross its drift threshold next week.")
        for _, r in crossing.head(5).iterrows():
            st.markdown(f"- **{safe(r['site'])} / {safe(r['environment'])}**: drift {r['drift_score']:.1f} now, "
                        f"forecast {r['forecast_next_week']:.1f} next week, above its plan threshold {r['threshold']:.0f}.")

st.subheader("Proactive insights")
try:
    found = estate.proactive_insights(location, scope.day, 5, scope.orgs)
except DataProblem as exc:
    st.info(safe(str(exc)))
else:
    if found.empty:
        st.caption(f"Nothing needs attention on {scope.day}: no new revocation, forecast breach, expiring waiver, DR gap "
                   "or expiring approval.")
    for _, r in found.iterrows():
        with st.container(border=True):
            left, right = st.columns([5, 1])
            left.badge(f"#{r['rank']} {r['severity']}", color=SEVERITY_COLOUR.get(r["severity"], "gray"))
            left.markdown(f"{safe(r['title'])}  \n*{safe(r['agent'])} agent:* “{safe(r['intent'])}”")
            with right:
                st.page_link("app_pages/copilot.py", label="Ask the copilot", icon=":material/smart_toy:",
                             query_params={"ask": r["intent"]})

rows = status.load(estate.fleet_rows, location, scope)
if rows is not None:
    st.subheader("By platform")
    table(rows, key="platforms", file_name=f"fleet-report-{scope.day}")
