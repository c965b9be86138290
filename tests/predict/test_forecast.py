"""Drift forecasts: ETS with intervals on enough history, the line fit on short history, carry-forward
on very short history; threshold crossing dates; the backtest against the naive forecast."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from qlrf.predict import forecast as F

START = date(2026, 8, 1)


def _rows(y, site="lon1", env="prod", platform="aws"):
    return [(platform, site, env, START + timedelta(days=i), float(v), 100) for i, v in enumerate(y)]


def test_enough_history_gets_ets_with_an_interval_around_the_forecast():
    rng = np.random.default_rng(3)
    y = 40 + rng.normal(0, 2, 40)
    f = F.forecast(y, 30)
    assert f.method.startswith("ETS(") and "statsmodels" in f.method
    assert np.all(f.lower <= f.mean) and np.all(f.mean <= f.upper)
    assert abs(f.mean[0] - 40) < 3 and f.upper[29] - f.lower[29] >= f.upper[0] - f.lower[0]


def test_short_history_falls_back_to_the_line_and_very_short_carries_forward():
    line = F.forecast(np.arange(10, dtype=float) + 20, 30)
    assert line.method.startswith("least squares line over 10 days")
    assert line.mean[6] == pytest.approx(36, abs=0.01)  # 20 + 9 + 7
    carried = F.forecast([30.0, 31.0, 29.0], 30)
    assert carried.method.startswith("carry forward") and carried.lower is None
    assert np.all(carried.mean == 29.0)


def test_forecasts_clamp_to_0_100():
    f = F.forecast(np.linspace(60, 99, 20), 30)
    assert f.mean.max() <= 100 and f.lower.min() >= 0


def test_crossing_date_state_and_the_forecast_rows():
    today = date(2026, 11, 20)
    assert F.crossing(today, 50, np.full(30, 50.0), 45) == (today, "above now")
    assert F.crossing(today, 40, np.linspace(41, 70, 30), 45) == (today + timedelta(days=5), "within 30 days")
    assert F.crossing(today, 40, np.full(30, 40.0), 45) == (None, "not within 30 days")
    rows = _rows(np.linspace(20, 40, 20)) + _rows([10.0] * 3, site="fra1")
    out = {r["site"]: r for r in F.drift_forecasts(rows, {"prod": 45})}
    assert out["lon1"]["forecast_30d"] > out["lon1"]["forecast_7d"] > out["lon1"]["drift_score"]
    assert out["lon1"]["crossing"] == "within 30 days" and out["lon1"]["crosses_threshold_on"] > out["lon1"]["last_day"]
    assert out["fra1"]["lower_7d"] is None and out["fra1"]["crossing"] == "not within 30 days"


def test_backtest_beats_naive_on_a_noisy_level():
    rng = np.random.default_rng(7)
    y = 40 + np.cumsum(rng.normal(0, 0.3, 45)) + rng.normal(0, 3, 45)
    result = F.backtest(_rows(y), origins=5, horizons=(1,))
    r = result[1]
    assert r["forecasts"] == 5 and r["mae_model"] < r["mae_naive"]
    assert 0 <= r["coverage_80"] <= 1
