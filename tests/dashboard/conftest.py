"""Warehouses for the page tests: empty, one materialised day, several days, and damaged copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from qlrf.warehouse import Warehouse

EARLIER = ("2026-11-18", "2026-11-19")


@pytest.fixture(autouse=True)
def no_developer_secrets(tmp_path_factory):
    """Streamlit reads ~/.streamlit, ./.streamlit and dashboards/.streamlit secrets.toml: a developer's own
    (sign-in configured) would turn every anonymous page test into a sign-in page. Tests that want a
    provider set ``at.secrets`` (AppTest) or pass ``--secrets.files`` (the browser)."""
    import streamlit as st
    from streamlit import config

    empty = tmp_path_factory.mktemp("no-secrets") / "secrets.toml"
    empty.write_text("")
    before = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(empty)])
    st.secrets._reset()
    yield
    config.set_option("secrets.files", before)
    st.secrets._reset()


@pytest.fixture()
def empty_warehouse(isolated_env, monkeypatch, tmp_path):
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "empty"))
    return tmp_path / "empty"


@pytest.fixture()
def one_day(isolated_env, monkeypatch, materialized_day, tmp_path):
    """A private copy of the session's materialised day (tests may damage it)."""
    root, day = materialized_day
    copy = tmp_path / "warehouse"
    shutil.copytree(root, copy)
    monkeypatch.setenv("QLRF_WAREHOUSE", str(copy))
    return Warehouse(str(copy)), day


def shifted(path: Path, out: Path, column: str, delta: float) -> None:
    """`path` rewritten to `out` with `delta` added to `column` (an earlier day that differs measurably)."""
    table = pq.read_table(path)
    index = table.schema.get_field_index(column)
    table = table.set_column(index, column, pc.add(table[column], delta).cast(table.schema.field(column).type))
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)


@pytest.fixture()
def three_days(one_day):
    """The materialised day plus two earlier days of roll-ups: each earlier day 2 points further behind."""
    wh, day = one_day
    for back, earlier in enumerate(reversed(EARLIER), start=1):
        shifted(Path(wh.file("fleet_report", day)), Path(wh.file("fleet_report", earlier)), "pct_current_golden", -2.0 * back)
        for platform in ("aws", "azure", "gcp", "vsphere"):
            shifted(Path(wh.file("drift_scores", day, platform)), Path(wh.file("drift_scores", earlier, platform)),
                    "drift_score", 3.0 * back)
    return wh, day
