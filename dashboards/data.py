"""Cached loaders over the warehouse; pages stay thin and only render."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from qlrf.contract import PLATFORMS
from qlrf.settings import Settings
from qlrf.warehouse import Warehouse


@st.cache_resource
def warehouse(root: str | None = None) -> Warehouse:
    return Warehouse(root or Settings.from_env().warehouse)


@st.cache_data(ttl=60)
def report_dates(root: str) -> list[str]:
    return sorted(warehouse(root).dates("fleet_report"), reverse=True)


@st.cache_data(ttl=300)
def fleet(root: str, day: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    wh = warehouse(root)
    return wh.read("fleet_report", day).to_pandas(), wh.read("fleet_sites", day).to_pandas()


@st.cache_data(ttl=300)
def scores(root: str, day: str, table: str) -> pd.DataFrame:
    wh = warehouse(root)
    present = [p for p in PLATFORMS if wh.exists(table, day, p)]
    if not present:
        return pd.DataFrame()
    return wh.read_platforms(table, day, present).to_pandas()


@st.cache_data(ttl=300)
def daily_table(root: str, day: str, table: str) -> pd.DataFrame:
    """A fleet-wide (daily) table such as drift_trends; empty when that day has none."""
    wh = warehouse(root)
    return wh.read(table, day).to_pandas() if wh.exists(table, day) else pd.DataFrame()
