"""Judge a canary against its baseline, as Kayenta's Mann-Whitney judge does. Pure: series in,
verdict out; no clock, no I/O.

Per metric (canary points pooled over the canary targets, baseline points over the baseline):

1. the data must be fit to judge, else the metric is ``nodata`` with a named reason:
   *missing* (a target without a single point), *clock skew* (the canary series start or end more
   than ``skew_tolerance_seconds`` away from the baseline's, or do not overlap at all), *gap* (a
   hole longer than ``max_gap_seconds`` inside a target's series, or a target that stopped
   reporting before the others), *too few points* (fewer than ``min_points`` on a side);
2. ``scipy.stats.mannwhitneyu`` (two-sided, asymptotic with tie correction) canary vs baseline gives U and p;
3. the effect: the ratio of medians (canary / baseline) or the Hodges-Lehmann shift (the median of
   every canary - baseline difference), both reported;
4. classification: ``high`` when p < alpha and the effect is above ``allowed_increase``, ``low``
   when p < alpha and below ``allowed_decrease``, else ``pass``; a ``high`` on a metric whose
   direction is ``decrease`` (or ``low`` on ``increase``) is harmless and passes.

The verdict: any failing ``critical`` metric -> ``fail``; else any ``nodata`` metric ->
``inconclusive`` (too little evidence never passes); else the score = sum over groups of the group
weight x (weight of the group's passing metrics / the group's total weight), as a percentage of
the group weights; score >= ``pass_score`` -> ``pass``; within [``marginal_score``, ``pass_score``)
-> ``inconclusive``; below -> ``fail``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from qlrf.remediation.canary.config import CanaryConfig, MetricSpec

Classification = Literal["pass", "high", "low", "nodata"]
Verdict = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Series:
    """One target's points: epoch seconds (any order) and values, the same length."""

    times: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.times) != len(self.values):
            raise ValueError(f"a series needs as many timestamps as values ({len(self.times)} != {len(self.values)})")

    @classmethod
    def of(cls, points: Sequence[tuple[float, float]]) -> Series:
        ordered = sorted((float(t), float(v)) for t, v in points)
        return cls(tuple(t for t, _ in ordered), tuple(v for _, v in ordered))

    def __len__(self) -> int:
        return len(self.times)


@dataclass(frozen=True)
class MetricData:
    """What a source returned for one metric: canary and baseline series by target id."""

    canary: Mapping[str, Series]
    baseline: Mapping[str, Series]
    error: str | None = None  # the source failed: the metric cannot be judged


@dataclass
class MetricResult:
    name: str
    group: str
    classification: Classification
    critical: bool
    weight: float
    direction: str
    effect_kind: str
    allowed_increase: float
    allowed_decrease: float
    n_canary: int = 0
    n_baseline: int = 0
    u: float | None = None
    p_value: float | None = None
    effect: float | None = None
    ratio: float | None = None
    hl_shift: float | None = None
    canary_median: float | None = None
    baseline_median: float | None = None
    reasons: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.classification in ("high", "low")

    def as_dict(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in asdict(self).items()}


@dataclass
class Judgement:
    verdict: Verdict
    score: float | None
    reason: str
    metrics: list[MetricResult]
    thresholds: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "score": self.score, "reason": self.reason,
                "thresholds": self.thresholds, "metrics": [m.as_dict() for m in self.metrics]}


def _finite(value: Any) -> Any:
    """JSON has no inf/nan: the audit log keeps them as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def judge(config: CanaryConfig, data: Mapping[str, MetricData]) -> Judgement:
    """The verdict over every configured metric; a metric absent from ``data`` is missing."""
    results = _judge_all(config, data)
    thresholds = config.thresholds()
    critical = [m for m in results if m.critical and m.failed]
    if critical:
        return Judgement("fail", None, "critical metric(s) failed: " + _names(critical), results, thresholds)
    nodata = [m for m in results if m.classification == "nodata"]
    if nodata:
        why = "; ".join(f"{m.name}: {', '.join(m.reasons)}" for m in nodata)
        return Judgement("inconclusive", None, f"not enough data to judge: {why}", results, thresholds)
    score = _score(config, results)
    failed = [m for m in results if m.failed]
    detail = f"score {score:.1f} (pass {config.pass_score:g})" + (f"; failed: {_names(failed)}" if failed else "")
    if score >= config.pass_score:
        return Judgement("pass", score, detail, results, thresholds)
    if config.marginal_score is not None and score >= config.marginal_score:
        return Judgement("inconclusive", score, f"marginal {detail}", results, thresholds)
    return Judgement("fail", score, detail, results, thresholds)


def _names(results: list[MetricResult]) -> str:
    return ", ".join(f"{m.name} ({m.classification}, effect {_fmt(m.effect)}, p={_fmt(m.p_value)})" for m in results)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


def _score(config: CanaryConfig, results: list[MetricResult]) -> float:
    groups: dict[str, list[MetricResult]] = {}
    for m in results:
        groups.setdefault(m.group, []).append(m)
    total = sum(config.group_weight(g) for g in groups)
    earned = sum(config.group_weight(g) * sum(m.weight for m in ms if not m.failed) / sum(m.weight for m in ms)
                 for g, ms in groups.items())
    return 100.0 * earned / total


def judge_metric(config: CanaryConfig, spec: MetricSpec, data: MetricData | None) -> MetricResult:
    """One metric on its own (the judge batches the Mann-Whitney tests of every metric instead)."""
    return _judge_all(config.model_copy(update={"metrics": [spec]}), {spec.name: data} if data else {})[0]


def _judge_all(config: CanaryConfig, data: Mapping[str, MetricData]) -> list[MetricResult]:
    """Every metric's result. The Mann-Whitney tests of metrics with the same sample sizes run as
    one vectorised scipy call (axis=1): scipy's per-call overhead, not the arithmetic, dominates
    at a few hundred points, so 10 metrics cost about one test."""
    results: list[MetricResult] = []
    ready: dict[tuple[int, int], list[tuple[MetricSpec, MetricResult, np.ndarray, np.ndarray]]] = {}
    for spec in config.metrics:
        result, canary, baseline = _prepare(config, spec, data.get(spec.name))
        results.append(result)
        if canary is not None and baseline is not None:
            ready.setdefault((len(canary), len(baseline)), []).append((spec, result, canary, baseline))
    for batch in ready.values():
        from scipy.stats import mannwhitneyu  # seconds to import: only when some metric can be judged

        test = mannwhitneyu(np.stack([c for _, _, c, _ in batch]), np.stack([b for _, _, _, b in batch]),
                            alternative="two-sided", axis=1, method="asymptotic")
        for (spec, result, canary, baseline), u, p in zip(batch, np.atleast_1d(test.statistic),
                                                          np.atleast_1d(test.pvalue), strict=True):
            _classify(config, spec, canary, baseline, float(u), float(p), result)
    return results


def _prepare(config: CanaryConfig, spec: MetricSpec,
             data: MetricData | None) -> tuple[MetricResult, np.ndarray | None, np.ndarray | None]:
    """The metric's result so far and its pooled points, or no points when it cannot be judged."""
    assert spec.allowed_increase is not None and spec.allowed_decrease is not None  # filled by validation
    result = MetricResult(spec.name, spec.group, "nodata", spec.critical, spec.weight, spec.direction, spec.effect,
                          spec.allowed_increase, spec.allowed_decrease)
    if data is None:
        result.reasons.append("missing: no data collected")
        return result, None, None
    if data.error:
        result.reasons.append(f"missing: {data.error}")
        return result, None, None
    result.reasons = data_problems(config, data)
    canary = _pool(data.canary)
    baseline = _pool(data.baseline)
    result.n_canary, result.n_baseline = len(canary), len(baseline)
    if result.reasons:
        return result, None, None
    return result, canary, baseline


def data_problems(config: CanaryConfig, data: MetricData) -> list[str]:
    """Why these series cannot be judged (empty: they can)."""
    problems: list[str] = []
    for side, series in (("canary", data.canary), ("baseline", data.baseline)):
        if not series:
            problems.append(f"missing: no {side} targets")
            continue
        empty = sorted(t for t, s in series.items() if len(s) == 0)
        if empty:
            problems.append(f"missing: no points for {side} target(s) {_few(empty)}")
    if problems:
        return problems
    c_first, c_last = _span(data.canary)
    b_first, b_last = _span(data.baseline)
    tol = config.skew_tolerance
    if c_first > b_last or b_first > c_last:
        problems.append(f"clock skew: canary [{c_first:.0f}, {c_last:.0f}] and baseline [{b_first:.0f}, {b_last:.0f}] "
                        "do not overlap")
    elif abs(c_first - b_first) > tol or abs(c_last - b_last) > tol:
        problems.append(f"clock skew: canary series start {c_first - b_first:+.0f}s / end {c_last - b_last:+.0f}s "
                        f"from the baseline's (tolerance {tol:g}s)")
    for side, series in (("canary", data.canary), ("baseline", data.baseline)):
        side_last = max(max(s.times) for s in series.values())
        for target, s in sorted(series.items()):
            times = np.sort(np.asarray(s.times, dtype=float))
            holes = np.diff(times)
            worst = float(holes.max()) if holes.size else 0.0
            if worst > config.max_gap:
                at = float(times[int(holes.argmax())])
                problems.append(f"gap: {side} target {target} has no points for {worst:.0f}s after {at:.0f} "
                                f"(max {config.max_gap:g}s)")
            elif side_last - times[-1] > config.max_gap:
                problems.append(f"gap: {side} target {target} stopped reporting {side_last - times[-1]:.0f}s "
                                f"before the others (max {config.max_gap:g}s)")
    n_c, n_b = sum(len(s) for s in data.canary.values()), sum(len(s) for s in data.baseline.values())
    if min(n_c, n_b) < config.min_points:
        problems.append(f"too few points: canary {n_c}, baseline {n_b} (min {config.min_points} per side)")
    return problems


def _few(items: list[str], limit: int = 5) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _span(series: Mapping[str, Series]) -> tuple[float, float]:
    return min(min(s.times) for s in series.values()), max(max(s.times) for s in series.values())


def _pool(series: Mapping[str, Series]) -> np.ndarray:
    if not series:
        return np.empty(0)
    return np.concatenate([np.asarray(s.values, dtype=float) for s in series.values()])


def _classify(config: CanaryConfig, spec: MetricSpec, canary: np.ndarray, baseline: np.ndarray, u: float, p: float,
              result: MetricResult) -> None:
    if math.isnan(p):  # every value tied on both sides: no evidence of a difference
        p = 1.0
    c_med, b_med = float(np.median(canary)), float(np.median(baseline))
    ratio = 1.0 if c_med == b_med else (c_med / b_med if b_med != 0 else math.copysign(math.inf, c_med - b_med))
    shift = float(np.median(np.subtract.outer(canary, baseline)))  # Hodges-Lehmann estimate
    result.u, result.p_value = u, p
    result.canary_median, result.baseline_median, result.ratio, result.hl_shift = c_med, b_med, ratio, shift
    assert spec.allowed_increase is not None and spec.allowed_decrease is not None
    if spec.effect == "ratio":
        effect, high, low = ratio, ratio > spec.allowed_increase, ratio < spec.allowed_decrease
    else:
        effect, high, low = shift, shift > spec.allowed_increase, shift < -spec.allowed_decrease
    result.effect = effect
    significant = p < config.alpha
    raw: Classification = "high" if significant and high else "low" if significant and low else "pass"
    if (raw == "high" and spec.direction == "decrease") or (raw == "low" and spec.direction == "increase"):
        result.reasons.append(f"{raw} ignored: only a{'n increase' if spec.direction == 'increase' else ' decrease'} hurts")
        raw = "pass"
    result.classification = raw


__all__ = ["Judgement", "MetricData", "MetricResult", "Series", "data_problems", "judge", "judge_metric"]
