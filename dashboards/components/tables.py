"""Every table the dashboard shows can be downloaded as CSV (what you see is what you get)."""

from __future__ import annotations

import pandas as pd
import streamlit as st


@st.cache_data(ttl=300, max_entries=64)
def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def table(frame: pd.DataFrame, key: str, file_name: str, total: int | None = None, **kwargs) -> None:
    """A dataframe with a CSV download of exactly its rows; `total` says how many rows exist beyond a limit."""
    st.dataframe(frame, hide_index=True, key=key, **kwargs)
    left, right = st.columns([1, 3])
    left.download_button("Download CSV", _csv(frame), file_name=f"{file_name}.csv", mime="text/csv", key=f"{key}-csv",
                         on_click="ignore")
    if total is not None and total > len(frame):
        right.caption(f"Showing the first {len(frame):,} of {total:,} rows; narrow the filters to see the others.")
