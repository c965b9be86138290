"""Altair charts with units in their axis titles, readable in light and dark themes.

Why no fixed colours except for meaning: Streamlit's Altair theme follows the viewer's theme; the
only hard-coded colours are diverging scales where red means bad, which read on both backgrounds.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st


def show(chart: alt.Chart, key: str) -> None:
    st.altair_chart(chart, key=key, width="stretch")


def sparkline(frame: pd.DataFrame, column: str, title: str, unit: str) -> alt.Chart:
    return (
        alt.Chart(frame).mark_line(point=True)
        .encode(x=alt.X("date:T", title=None, axis=alt.Axis(format="%d %b", labelAngle=0)),
                y=alt.Y(f"{column}:Q", title=unit, scale=alt.Scale(zero=False)),
                tooltip=[alt.Tooltip("date:T"), alt.Tooltip(f"{column}:Q", title=title, format=".1f")])
        .properties(height=110, title=title)
    )


def heatmap(frame: pd.DataFrame, value: str, title: str, higher_is_worse: bool = True) -> alt.Chart:
    scheme = alt.Scale(domain=[0, 100], scheme="redyellowgreen", reverse=higher_is_worse)
    base = alt.Chart(frame).encode(x=alt.X("environment:N", title="Environment", axis=alt.Axis(labelAngle=0)),
                                   y=alt.Y("site:N", title="Site", axis=alt.Axis(labelOverlap=False)))
    cells = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", scale=scheme, title=title),
        tooltip=["site", "environment", alt.Tooltip(f"{value}:Q", format=".1f"), alt.Tooltip("vms:Q", title="VMs", format=",")],
    )
    labels = base.mark_text(fontWeight="bold", color="black").encode(text=alt.Text(f"{value}:Q", format=".0f"))
    return (cells + labels).properties(height=alt.Step(32))


def bars(frame: pd.DataFrame, x: str, y: str, x_title: str, y_title: str, color: str | None = None,
         sort: list[str] | str | None = None, horizontal: bool = False) -> alt.Chart:
    if horizontal:
        enc = {"y": alt.Y(f"{x}:N", title=x_title, sort=sort, axis=alt.Axis(labelLimit=320)), "x": alt.X(f"{y}:Q", title=y_title)}
    else:
        enc = {"x": alt.X(f"{x}:N", title=x_title, sort=sort, axis=alt.Axis(labelAngle=0, labelLimit=260)),
               "y": alt.Y(f"{y}:Q", title=y_title)}
    if color:
        enc["color"] = alt.Color(f"{color}:N", title=color.replace("_", " "))
    return alt.Chart(frame).mark_bar().encode(**enc, tooltip=list(frame.columns)).properties(height=260)


def trend_lines(frame: pd.DataFrame, series: str, value: str, y_title: str, threshold: float | None = None) -> alt.Chart:
    lines = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("date:T", title="Date", axis=alt.Axis(format="%d %b")),
        y=alt.Y(f"{value}:Q", title=y_title, scale=alt.Scale(domain=[0, 100])),
        color=alt.Color(f"{series}:N", title=series),
        tooltip=[alt.Tooltip("date:T"), series, alt.Tooltip(f"{value}:Q", format=".1f")],
    )
    if threshold is None:
        return lines.properties(height=280)
    rule = alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(strokeDash=[6, 4], color="#d62728").encode(
        y="threshold:Q", tooltip=[alt.Tooltip("threshold:Q", title="plan threshold")])
    return (lines + rule).properties(height=280)


def stacked_share(frame: pd.DataFrame, category: str, stack: str, value: str, order: list[str], title: str) -> alt.Chart:
    """100%-stacked bars: the share of `value` in each `stack` band per `category` (bands ordered good to bad)."""
    return alt.Chart(frame).mark_bar().encode(
        y=alt.Y(f"{category}:N", title=None),
        x=alt.X(f"sum({value}):Q", stack="normalize", title=title, axis=alt.Axis(format="%")),
        color=alt.Color(f"{stack}:N", sort=order, scale=alt.Scale(domain=order, scheme="redyellowgreen", reverse=True),
                        title=stack.replace("_", " ")),
        order=alt.Order("band_order:Q"),
        tooltip=[category, stack, alt.Tooltip(f"{value}:Q", format=",", title="VMs")],
    ).properties(height=max(120, 45 * frame[category].nunique()))
