"""Week-ahead drift forecasts from the daily score partitions."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa

from qlrf.scoring.trends import drift_trends
from qlrf.warehouse import Warehouse

DAY = date(2026, 11, 27)


def _scores(site: str, env: str, score: float, vms: int = 100) -> dict:
    return {"platform": "aws", "site": site, "environment": env, "vms": vms, "on_current": 50,
            "pct_current": 50.0, "revoked": 0, "unmanaged_or_unknown": 0, "drift_score": score}


def test_least_squares_forecast_and_trend(tmp_path):
    wh = Warehouse(str(tmp_path))
    for back in range(5):  # lon1 improves 2 points a day, syd1 worsens 3, fra1 flat
        day = DAY - timedelta(days=back)
        rows = [_scores("lon1", "prod", 40 + 2 * back), _scores("syd1", "prod", 60 - 3 * back), _scores("fra1", "prod", 30)]
        wh.write("drift_scores", pa.Table.from_pylist(rows), day, "aws")
    out = {r["site"]: r for r in drift_trends(wh, DAY).to_pylist()}
    assert out["syd1"]["drift_score"] == 60 and out["syd1"]["change_per_week"] == 21.0
    assert out["syd1"]["forecast_next_week"] == 81.0 and out["syd1"]["trend"] == "worsening"
    assert out["lon1"]["forecast_next_week"] == 26.0 and out["lon1"]["trend"] == "improving"
    assert out["fra1"]["forecast_next_week"] == 30.0 and out["fra1"]["trend"] == "steady"
    assert out["syd1"]["method"] == "least squares over 5 daily partitions"
    assert list(out) == ["syd1", "fra1", "lon1"]  # ordered by forecast, worst first


def test_forecast_is_clamped_and_short_history_carries_forward(tmp_path):
    wh = Warehouse(str(tmp_path))
    for back, score in enumerate([99, 90, 80]):
        wh.write("drift_scores", pa.Table.from_pylist([_scores("a", "dev", score)]), DAY - timedelta(days=back), "aws")
    wh.write("drift_scores", pa.Table.from_pylist([_scores("b", "dev", 12)]), DAY, "gcp")
    out = {r["site"]: r for r in drift_trends(wh, DAY).to_pylist()}
    assert out["a"]["forecast_next_week"] == 100.0
    assert (out["b"]["forecast_next_week"], out["b"]["trend"]) == (12.0, "unknown")
    assert out["b"]["method"].startswith("carry forward")


def test_sites_across_platforms_are_weighted_by_vms(tmp_path):
    wh = Warehouse(str(tmp_path))
    wh.write("drift_scores", pa.Table.from_pylist([_scores("x", "prod", 10, vms=300)]), DAY, "aws")
    wh.write("drift_scores", pa.Table.from_pylist([_scores("x", "prod", 50, vms=100)]), DAY, "azure")
    assert drift_trends(wh, DAY).to_pylist()[0]["drift_score"] == 20.0
