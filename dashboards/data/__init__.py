"""Cached loaders: pages stay thin and only render.

`estate` reads the warehouse (through qlrf.views: DuckDB with filters and limits), `tasks` reads the
task store and audit log. Caches are bounded (ttl and max_entries) so a long-running server with
many filter combinations does not grow without limit.
"""

from __future__ import annotations

import streamlit as st

from qlrf.settings import Settings
from qlrf.warehouse import Warehouse


def root() -> str:
    """The warehouse the pipeline writes (QLRF_WAREHOUSE, else <QLRF_HOME>/warehouse), read per run."""
    return Settings.from_env().warehouse


@st.cache_resource(max_entries=8)
def warehouse(location: str) -> Warehouse:
    return Warehouse(location)
