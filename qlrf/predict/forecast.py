"""Drift forecasts with prediction intervals per site x environment x platform, 7 and 30 days ahead.

Method: the daily drift scores (drift_scores partitions, up to ``WINDOW_DAYS`` back) of each series are
fitted with statsmodels' ETS state-space model (``ETSModel``: additive errors, no seasonality; simple
exponential smoothing and a damped additive trend are both fitted and the one with the lower AICc is
kept). Intervals are the model's own 80 % prediction intervals (``get_prediction().summary_frame``).
With fewer than ``MIN_ETS_DAYS`` days the series falls back to the least-squares line of
qlrf/scoring/trends.py (the forecast that existed before) with an OLS prediction interval; with fewer
than ``MIN_LINE_DAYS`` (7) days today's score is carried forward with no interval. Scores are clamped to 0-100.

Threshold crossing: the environment's ``drift_threshold`` (policy/remediation.yaml); the first day
the point forecast reaches it within ``HORIZON_DAYS``, ``today`` when it is already above, else none.

Limits: the sample estate's drift follows a 28-day patch cycle the model does not know (no seasonal
term: four weeks of history is too little to fit one); a sudden rebuild or a newly revoked image is a
jump no smoother predicts. Intervals assume Gaussian errors.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from qlrf import sql
from qlrf.warehouse import Warehouse

WINDOW_DAYS = 90
MIN_ETS_DAYS = 14
MIN_LINE_DAYS = 7  # a line through fewer noisy days extrapolated 30 days ahead says nothing
HORIZON_DAYS = 30
SHORT_HORIZON = 7
ALPHA = 0.2  # 80 % prediction intervals


@dataclass(frozen=True)
class Forecast:
    """Point forecasts and 80 % interval bounds for horizons 1..len(mean) days after the last day."""

    method: str
    mean: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None


def _clamp(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.clip(a, 0.0, 100.0)


def line_forecast(y: np.ndarray, horizon: int) -> Forecast:
    """Least squares against the day number (the trends.py fit), with the OLS prediction interval."""
    n = len(y)
    if n < MIN_LINE_DAYS:
        return Forecast(f"carry forward (fewer than {MIN_LINE_DAYS} days of history)", np.full(horizon, float(y[-1])),
                        None, None)
    from scipy import stats

    x = np.arange(n, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    future = np.arange(n, n + horizon, dtype=float)
    mean = intercept + slope * future
    resid = y - (intercept + slope * x)
    s = math.sqrt(float(resid @ resid) / (n - 2)) if n > 2 else 0.0
    sxx = float(((x - x.mean()) ** 2).sum())
    half = stats.t.ppf(1 - ALPHA / 2, n - 2) * s * np.sqrt(1 + 1 / n + (future - x.mean()) ** 2 / sxx)
    return Forecast(f"least squares line over {n} days (fewer than {MIN_ETS_DAYS}: too short for ETS)",
                    mean, mean - half, mean + half)


def ets_forecast(y: np.ndarray, horizon: int) -> Forecast:
    """ETS(A,N,N) and ETS(A,Ad,N) fitted by maximum likelihood; the lower AICc wins."""
    import pandas as pd
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    series = pd.Series(y)  # get_prediction needs an indexed series
    best = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on flat series; the fit is still usable
        for trend, damped, name in ((None, False, "ETS(A,N,N)"), ("add", True, "ETS(A,Ad,N)")):
            try:
                fit = ETSModel(series, error="add", trend=trend, damped_trend=damped).fit(disp=False)
            except (ValueError, np.linalg.LinAlgError):
                continue
            if not np.isfinite(fit.aicc):
                continue
            if best is None or fit.aicc < best[0].aicc:
                best = (fit, name)
        if best is None:
            return line_forecast(y, horizon)
        fit, name = best
        frame = fit.get_prediction(start=len(y), end=len(y) + horizon - 1).summary_frame(alpha=ALPHA)
    return Forecast(f"{name} over {len(y)} days (statsmodels ETSModel, 80% interval)", frame["mean"].to_numpy(),
                    frame["pi_lower"].to_numpy(), frame["pi_upper"].to_numpy())


def forecast(y: np.ndarray | list[float], horizon: int = HORIZON_DAYS) -> Forecast:
    """The forecast for one daily series (oldest first), clamped to 0-100."""
    y = np.asarray(y, dtype=float)
    if len(y) == 0:
        raise ValueError("an empty series has no forecast")
    f = ets_forecast(y, horizon) if len(y) >= MIN_ETS_DAYS and np.ptp(y) > 0 else line_forecast(y, horizon)
    if len(y) >= MIN_ETS_DAYS and np.ptp(y) == 0:
        f = Forecast(f"constant over {len(y)} days (no variation to fit)", np.full(horizon, y[-1]),
                     np.full(horizon, y[-1]), np.full(horizon, y[-1]))
    return Forecast(f.method, _clamp(f.mean), _clamp(f.lower), _clamp(f.upper))


def crossing(last_day: date, today_score: float, mean: np.ndarray, threshold: float | None) -> tuple[date | None, str]:
    """(date, state): when the point forecast first reaches the threshold."""
    if threshold is None:
        return None, "no threshold for this environment"
    if today_score >= threshold:
        return last_day, "above now"
    hits = np.nonzero(mean >= threshold)[0]
    if len(hits):
        return last_day + timedelta(days=int(hits[0]) + 1), f"within {len(mean)} days"
    return None, f"not within {len(mean)} days"


_HISTORY = """
SELECT platform, site, environment, day, sum(drift_score * vms) / sum(vms) AS drift_score, sum(vms)::INTEGER AS vms
FROM history GROUP BY ALL ORDER BY platform, site, environment, day
"""


def history(wh: Warehouse, day: date, platforms: tuple[str, ...], window: int = WINDOW_DAYS) -> list[tuple]:
    """(platform, site, environment, day, drift_score, vms) rows from drift_scores of the window's days."""
    files, days = [], []
    for offset in range(window):
        d = day - timedelta(days=offset)
        for p in platforms:
            if wh.exists("drift_scores", d, p):
                files.append(wh.source("drift_scores", d, p))
                days.append(d)
    if not files:
        return []
    con = sql.connect()
    if all(isinstance(f, str) for f in files):
        con.read_parquet(files, hive_partitioning=True, union_by_name=True).create_view("raw", replace=True)
        con.execute("CREATE OR REPLACE TEMP VIEW history AS SELECT *, date::DATE AS day FROM raw")
    else:  # remote warehouse: the tables themselves
        import pyarrow as pa

        tables = [t.append_column("day", pa.array([d] * t.num_rows, pa.date32())) for t, d in zip(files, days, strict=True)]
        sql.relation(con, "history", pa.concat_tables(tables, promote_options="default"))
    return sql.rows(con, _HISTORY)


def drift_forecasts(rows: list[tuple], thresholds: dict[str, float], horizon: int = HORIZON_DAYS) -> list[dict]:
    """One row per series: today's score, the 7- and 30-day forecasts with intervals, the crossing."""
    series: dict[tuple, list[tuple]] = {}
    for platform, site, env, d, score, vms in rows:
        series.setdefault((platform, site, env), []).append((d, float(score), vms))
    out = []
    for (platform, site, env), points in sorted(series.items()):
        points.sort()
        y = np.array([p[1] for p in points])
        f = forecast(y, horizon)
        last_day = points[-1][0]
        crosses_on, state = crossing(last_day, float(y[-1]), f.mean, thresholds.get(env))
        row = {"platform": platform, "site": site, "environment": env, "days_of_history": len(y),
               "last_day": last_day, "vms": points[-1][2], "drift_score": round(float(y[-1]), 2), "method": f.method}
        for h in (SHORT_HORIZON, horizon):
            row[f"forecast_{h}d"] = round(float(f.mean[h - 1]), 2)
            row[f"lower_{h}d"] = None if f.lower is None else round(float(f.lower[h - 1]), 2)
            row[f"upper_{h}d"] = None if f.upper is None else round(float(f.upper[h - 1]), 2)
        row.update({"threshold": thresholds.get(env), "crosses_threshold_on": crosses_on, "crossing": state})
        out.append(row)
    return out


def backtest(rows: list[tuple], origins: int, horizons: tuple[int, ...] = (1, SHORT_HORIZON),
             min_history: int = MIN_ETS_DAYS) -> dict[int, dict[str, float]]:
    """Replay history: for each series and each of the last `origins` days that leave every horizon
    inside the data, forecast from the days up to it and compare with what happened.

    Returns per horizon: MAE of the model, MAE of the naive forecast (the last value carried forward,
    "tomorrow = today"), 80 % interval coverage and the number of forecasts scored."""
    series: dict[tuple, list[tuple]] = {}
    for platform, site, env, d, score, _vms in rows:
        series.setdefault((platform, site, env), []).append((d, float(score)))
    errors: dict[int, dict[str, list[float]]] = {h: {"model": [], "naive": [], "covered": []} for h in horizons}
    top = max(horizons)
    for points in series.values():
        y = np.array([s for _, s in sorted(points)])
        last_origin = len(y) - top  # the forecast from index i-1 for i + h - 1 must exist
        for end in range(max(min_history, last_origin - origins + 1), last_origin + 1):
            f = forecast(y[:end], top)
            for h in horizons:
                actual = y[end + h - 1]
                errors[h]["model"].append(abs(f.mean[h - 1] - actual))
                errors[h]["naive"].append(abs(y[end - 1] - actual))
                if f.lower is not None:
                    errors[h]["covered"].append(float(f.lower[h - 1] <= actual <= f.upper[h - 1]))
    return {h: {"mae_model": float(np.mean(e["model"])), "mae_naive": float(np.mean(e["naive"])),
                "coverage_80": float(np.mean(e["covered"])) if e["covered"] else float("nan"), "forecasts": len(e["model"])}
            for h, e in errors.items()}
