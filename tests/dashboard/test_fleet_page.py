"""The fleet page renders the report the pipeline wrote, for a chosen date."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


@pytest.fixture()
def warehouse_env(monkeypatch, materialized_day):
    root, day = materialized_day
    monkeypatch.setenv("QLRF_WAREHOUSE", str(root))
    return day


def test_fleet_page_shows_the_report(warehouse_env):
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert at.selectbox(key="date").value == warehouse_env
    assert "Summary" in [h.value for h in at.subheader]
    assert at.caption[0].value.startswith("Source: rules")  # no model configured in tests
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["VMs"] == "12,200"
    assert metrics["Compliance score"].endswith("%")
    platforms = at.dataframe[0].value
    assert list(platforms["platform"]) == ["aws", "azure", "gcp", "vsphere", "all"]
    at.slider(key="top").set_value(2).run()
    assert len(at.dataframe[1].value) == 2
    assert list(at.dataframe[2].value.columns) == ["dev", "prod", "staging"]  # drift by site x environment
    forecast = at.dataframe[3].value
    assert {"forecast_next_week", "trend"} <= set(forecast.columns) and len(forecast) == 10


def test_empty_warehouse_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "empty"))
    at = AppTest.from_file(APP, default_timeout=30).run()
    assert not at.exception
    assert "make run" in at.info[0].value
