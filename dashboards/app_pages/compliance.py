"""Compliance: pass rate per control, the VMs failing one, waivers (expired and expiring highlighted), trend."""

from datetime import date

import streamlit as st

from dashboards.components import charts, status
from dashboards.components.tables import table
from dashboards.components.text import safe
from dashboards.data import estate

location, scope = status.page("Compliance")
st.markdown("**Compliance score** (%): severity-weighted share of applicable controls passed per VM; a waived control counts "
            "as passed until its waiver expires.")
status.completeness(location, scope.day, ("vm_compliance", "compliance_scores", "compliance_controls"))

rates = status.load(estate.control_rates, location, scope)
if rates is not None:
    st.subheader("Pass rate per control")
    charts.show(charts.bars(rates, "control", "pass_rate", "control", "VMs passing (%)", color="severity",
                            sort=list(rates.sort_values("pass_rate")["control"]), horizontal=True), key="control-chart")
    st.caption("Pass rate = VMs in scope not failing the control; VMs a control does not apply to count as passing.")
    table(rates, key="controls", file_name=f"controls-{scope.day}")

    failing = rates[rates["failing_vms"] > 0]
    if not failing.empty:
        st.subheader("VMs failing a control")
        control = st.selectbox("Control", list(failing["control"]), key="control",
                               format_func=lambda c: f"{c} · {rates.set_index('control').loc[c, 'title']}")
        vms = status.load(estate.failing_vms, location, scope, control)
        if vms is not None:
            frame, total = vms
            table(frame, key="failing", file_name=f"failing-{control}-{scope.day}", total=total)

st.subheader("Waivers")
waivers = estate.waivers(date.fromisoformat(scope.day))
if waivers.empty:
    st.caption("No waiver in policy/waivers.yaml.")
else:
    expired, soon = (int((waivers["state"] == s).sum()) for s in ("expired", "expiring soon"))
    st.caption(f"As of {scope.day}: {expired} expired, {soon} expiring within 30 days. Expired waivers no longer excuse a "
               "failure; renew them in policy/waivers.yaml with a new expiry, or fix the VMs.")
    colour = {"expired": "background-color: rgba(214, 39, 40, 0.25)", "expiring soon": "background-color: rgba(255, 160, 0, 0.25)"}
    styled = waivers.style.apply(lambda row: [colour.get(row["state"], "")] * len(row), axis=1)
    st.dataframe(styled, hide_index=True, key="waivers")
    st.download_button("Download CSV", waivers.to_csv(index=False).encode(), file_name=f"waivers-{scope.day}.csv",
                       mime="text/csv", key="waivers-csv", on_click="ignore")

st.subheader("Trend")
history = estate.fleet_history(location, scope.day, scope.platform, scope.orgs)
if len(history) > 1:
    history = history.assign(series="compliance score")
    charts.show(charts.trend_lines(history, "series", "compliance_score", "compliance score (%)"), key="compliance-trend")
else:
    st.caption(f"One day of history so far{' (' + safe(scope.platform) + ')' if scope.platform else ''}: the trend appears "
               "from the second daily run.")
