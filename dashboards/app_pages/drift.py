"""Drift: where VMs are behind their golden image (site x environment), how far, revoked exposure,
trend and forecast against each environment's plan threshold, and the VMs of one cell."""

import streamlit as st

from dashboards.components import charts, status
from dashboards.components.tables import table
from dashboards.components.text import safe
from dashboards.data import estate

location, scope = status.page("Drift")
st.markdown("**Drift score** (0-100): severity-weighted distance from the current golden image; 0 = every VM current, "
            "100 = every VM critical (revoked image or far behind). VM-weighted across platforms.")
status.completeness(location, scope.day, ("vm_drift", "drift_scores", "drift_breakdown", "drift_trends"))

cells = status.load(estate.drift_heatmap, location, scope)
if cells is not None and not cells.empty:
    st.subheader("Drift score by site and environment")
    charts.show(charts.heatmap(cells, "drift_score", "drift score (0-100)"), key="drift-heatmap")
    table(cells, key="drift-cells", file_name=f"drift-cells-{scope.day}")

    st.subheader("VMs of one cell")
    labels = [f"{r.site} / {r.environment}" for r in cells.itertuples()]
    worst = int(cells["drift_score"].to_numpy().argmax())
    choice = st.selectbox("Cell", range(len(labels)), index=worst, format_func=lambda i: labels[i], key="drift-cell")
    cell = cells.iloc[choice]
    vms = status.load(estate.drift_cell, location, scope, cell["site"], cell["environment"])
    if vms is not None:
        frame, total = vms
        st.caption(f"{total:,} VMs in {safe(cell['site'])} / {safe(cell['environment'])}; revoked and unknown images first, then "
                   "the furthest behind.")
        table(frame, key="drift-vms", file_name=f"drift-{cell['site']}-{cell['environment']}-{scope.day}", total=total)
elif cells is not None:
    st.info("No VM matches these filters on this day.")

left, right = st.columns(2)
with left:
    behind = status.load(estate.versions_behind, location, scope)
    if behind is not None and not behind.empty:
        st.subheader("Versions behind")
        charts.show(charts.bars(behind, "versions_behind", "vms", "versions behind current (or status)", "VMs", color="status",
                                sort=list(behind["versions_behind"])), key="behind-chart")
        table(behind, key="behind", file_name=f"versions-behind-{scope.day}")
with right:
    revoked = status.load(estate.revoked_exposure, location, scope)
    if revoked is not None:
        st.subheader("Revoked-image exposure")
        if revoked.empty:
            st.success("No VM runs a revoked image in this scope.")
        else:
            st.caption(f"{int(revoked['vms'].sum()):,} VMs run a revoked image; each needs a patch plan whatever its drift score.")
            table(revoked, key="revoked", file_name=f"revoked-{scope.day}")

st.subheader("Trend and forecast")
trend = status.load(estate.drift_trend, location, scope)
thresholds = estate.thresholds()
threshold = thresholds.get(scope.environment) if scope.environment else None
if trend is not None and trend["date"].nunique() > 1:
    charts.show(charts.trend_lines(trend, "site", "drift_score", "drift score (0-100)", threshold), key="drift-trend")
    st.caption("Dashed line: the plan threshold of the chosen environment." if threshold is not None else
               "Choose an environment to draw its plan threshold (" +
               ", ".join(f"{e} {t:.0f}" for e, t in thresholds.items()) + ").")
elif trend is not None:
    st.caption("One day of history so far: the trend chart appears from the second daily run.")
forecast = status.load(estate.forecasts, location, scope)
if forecast is not None:
    st.caption(f"Forecast method: {safe(forecast['method'].iloc[0]) if len(forecast) else '-'} (per site x environment; "
               "carry-forward while history is short). crosses_threshold = forecast above the environment's plan threshold.")
    table(forecast.drop(columns=["method"]), key="forecast", file_name=f"drift-forecast-{scope.day}")
