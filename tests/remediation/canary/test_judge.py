"""The canary judge on known distributions: pass / high / low, direction, critical metrics, weights
and groups, and every data problem that makes the verdict inconclusive (with its named reason)."""

from __future__ import annotations

import numpy as np
import pytest

from qlrf.remediation.canary.config import CanaryConfigError, parse_canary, resolve_config
from qlrf.remediation.canary.judge import MetricData, Series, judge
from qlrf.remediation.policy import RemediationPolicy, RemediationPolicyError

T0 = 1_795_900_000.0  # 2026-11-28, a fixed instant: the judge never reads a clock
STEP = 60


def series(values, *, start=T0, step=STEP) -> Series:
    return Series(tuple(start + step * i for i in range(len(values))), tuple(float(v) for v in values))


def side(mu, sigma=2.0, *, targets=3, points=20, seed=0, start=T0) -> dict[str, Series]:
    rng = np.random.default_rng(seed)
    return {f"i-{seed}-{k}": series(rng.normal(mu, sigma, points), start=start) for k in range(targets)}


def config(*metrics: dict, **over) -> object:
    return parse_canary({"metrics": list(metrics) or [metric("cpu")], **over})


def metric(name: str, **over) -> dict:
    return {"name": name, "source": "cloudwatch", "metric": "CPUUtilization", **over}


def data(canary_mu, baseline_mu=50.0, **kw) -> MetricData:
    return MetricData(side(canary_mu, seed=1, **kw), side(baseline_mu, seed=2, **kw))


def test_same_distribution_passes_with_its_statistics():
    j = judge(config(), {"cpu": data(50.0)})
    (m,) = j.metrics
    assert j.verdict == "pass" and j.score == 100.0
    assert m.classification == "pass" and m.n_canary == 60 and m.n_baseline == 60
    assert m.p_value > 0.05 and 0.9 < m.ratio < 1.1 and abs(m.hl_shift) < 1.5
    assert m.u is not None and 45 < m.canary_median < 55 and 45 < m.baseline_median < 55
    record = j.as_dict()
    assert record["thresholds"]["pass_score"] == 95 and record["metrics"][0]["allowed_increase"] == 1.2


def test_a_clear_increase_is_high_and_fails_the_score():
    j = judge(config(), {"cpu": data(80.0)})
    (m,) = j.metrics
    assert m.classification == "high" and m.p_value < 1e-6 and m.effect == pytest.approx(1.6, rel=0.05)
    assert j.verdict == "fail" and j.score == 0.0 and "cpu (high" in j.reason


def test_a_significant_but_small_increase_is_within_the_allowed_effect():
    # 52 vs 50 with sigma 0.5: p is tiny, but a 4 % rise is inside allowed_increase 1.2
    j = judge(config(), {"cpu": MetricData(side(52, 0.5, seed=1), side(50, 0.5, seed=2))})
    assert j.metrics[0].p_value < 1e-6 and j.metrics[0].classification == "pass" and j.verdict == "pass"


def test_direction_decides_which_side_hurts():
    low = {"cpu": data(20.0)}
    assert judge(config(metric("cpu", direction="either")), low).metrics[0].classification == "low"
    inc = judge(config(metric("cpu", direction="increase")), low)
    assert inc.metrics[0].classification == "pass" and "low ignored" in inc.metrics[0].reasons[0]
    assert judge(config(metric("cpu", direction="decrease")), low).verdict == "fail"
    assert judge(config(metric("cpu", direction="decrease")), {"cpu": data(80.0)}).verdict == "pass"


def test_shift_effect_in_the_metric_unit():
    slower = {"lat": MetricData(side(130, 5, seed=1), side(100, 5, seed=2))}
    tight = config(metric("lat", effect="shift", allowed_increase=10))
    loose = config(metric("lat", effect="shift", allowed_increase=50))
    assert judge(tight, slower).metrics[0].classification == "high"
    assert judge(tight, slower).metrics[0].effect == pytest.approx(30, abs=3)
    assert judge(loose, slower).verdict == "pass"


def test_a_failed_critical_metric_fails_the_wave_whatever_the_score():
    metrics = [metric(f"m{i}") for i in range(9)] + [metric("errors", critical=True)]
    cfg = config(*metrics, pass_score=80)
    good = {f"m{i}": data(50.0) for i in range(9)}
    assert judge(cfg, {**good, "errors": data(50.0)}).verdict == "pass"
    j = judge(cfg, {**good, "errors": data(90.0)})
    assert j.verdict == "fail" and j.reason.startswith("critical metric(s) failed: errors (high")
    # the same failure on a non-critical metric: score 90 >= 80 passes
    cfg2 = config(*metrics[:9], metric("errors"), pass_score=80)
    assert judge(cfg2, {**good, "errors": data(90.0)}).verdict == "pass"


def test_weights_and_groups_make_the_score():
    cfg = config(metric("cpu", group="saturation", weight=1), metric("mem", group="saturation", weight=3),
                 metric("lat", group="latency"), groups={"saturation": 1, "latency": 3}, pass_score=70,
                 marginal_score=50)
    # cpu fails: saturation earns 3/4 of its weight 1, latency all of 3 -> (0.75 + 3) / 4 = 93.75 %
    j = judge(cfg, {"cpu": data(90.0), "mem": data(50.0), "lat": data(50.0)})
    assert j.score == pytest.approx(93.75) and j.verdict == "pass"
    # lat fails: (1 + 0) / 4 = 25 % -> fail
    j = judge(cfg, {"cpu": data(50.0), "mem": data(50.0), "lat": data(90.0)})
    assert j.score == pytest.approx(25.0) and j.verdict == "fail"
    # mem fails: (0.25 + 3) / 4 = 81.25 >= 70 pass; cpu + mem fail: 3 / 4 = 75 pass; with pass 80: marginal
    cfg80 = config(*cfg.model_dump()["metrics"], groups={"saturation": 1, "latency": 3}, pass_score=80, marginal_score=50)
    j = judge(cfg80, {"cpu": data(90.0), "mem": data(90.0), "lat": data(50.0)})
    assert j.score == pytest.approx(75.0) and j.verdict == "inconclusive" and j.reason.startswith("marginal score 75.0")


def test_too_few_points_is_inconclusive_never_a_pass():
    few = MetricData(side(50, targets=1, points=5, seed=1), side(50, targets=6, points=5, seed=2))
    j = judge(config(), {"cpu": few})
    assert j.verdict == "inconclusive" and j.metrics[0].classification == "nodata"
    assert "too few points: canary 5, baseline 30 (min 10 per side)" in j.reason
    assert judge(config(min_points=5), {"cpu": few}).verdict == "pass"  # configurable


def test_missing_metrics_name_the_metric_and_the_targets():
    cfg = config(metric("cpu"), metric("net"))
    j = judge(cfg, {"cpu": data(50.0)})
    assert j.verdict == "inconclusive" and "net: missing: no data collected" in j.reason
    canary = side(50, seed=1)
    canary["i-dead"] = Series((), ())
    j = judge(config(), {"cpu": MetricData(canary, side(50, seed=2))})
    assert "missing: no points for canary target(s) i-dead" in j.reason
    j = judge(config(), {"cpu": MetricData({}, {}, "CloudWatch GetMetricData AWS/EC2/CPUUtilization: AccessDenied")})
    assert "cpu: missing: CloudWatch GetMetricData AWS/EC2/CPUUtilization: AccessDenied" in j.reason


def test_gaps_inside_a_series_or_a_target_that_stopped_reporting():
    values = np.full(20, 50.0)
    holed = Series(tuple(T0 + STEP * i for i in range(20) if not 5 <= i < 10), tuple(values[:15]))
    canary = {**side(50, seed=1, targets=2), "i-holed": holed}
    j = judge(config(), {"cpu": MetricData(canary, side(50, seed=2))})
    assert j.verdict == "inconclusive" and "gap: canary target i-holed has no points for 360s" in j.reason
    stopped = {**side(50, seed=1, targets=2), "i-quiet": series(values[:12])}
    j = judge(config(), {"cpu": MetricData(stopped, side(50, seed=2))})
    assert "gap: canary target i-quiet stopped reporting 480s before the others (max 120s)" in j.reason


def test_clock_skew_between_canary_and_baseline():
    shifted = MetricData(side(50, seed=1, start=T0 + 300), side(50, seed=2))
    j = judge(config(), {"cpu": shifted})
    assert j.verdict == "inconclusive" and "clock skew: canary series start +300s / end +300s" in j.reason
    assert judge(config(skew_tolerance_seconds=400), {"cpu": shifted}).verdict == "pass"
    apart = MetricData(side(50, seed=1, start=T0 + 3600), side(50, seed=2))
    assert "do not overlap" in judge(config(), {"cpu": apart}).reason


def test_a_critical_failure_outranks_missing_data():
    cfg = config(metric("errors", critical=True), metric("net"))
    j = judge(cfg, {"errors": data(90.0)})
    assert j.verdict == "fail" and "errors" in j.reason


@pytest.mark.parametrize(("doc", "message"), [
    ({"metrics": []}, "canary.metrics: List should have at least 1 item"),
    ({"metrics": [metric("a", allowed_increase=0.9)]}, "canary.metrics.0: Value error, allowed_increase: a ratio"),
    ({"metrics": [metric("a", effect="shift")]}, "allowed_increase: required with effect shift"),
    ({"metrics": [metric("a"), metric("a")]}, "names must be unique, repeated ['a']"),
    ({"metrics": [metric("a", group="g")], "groups": {"h": 1}}, "metrics.0.group: 'g' has no weight in groups"),
    ({"metrics": [metric("a", source="datadog")]}, "canary.metrics.0.source: Input should be"),
    ({"metrics": [metric("a")], "min_points": 1}, "canary.min_points: Input should be greater than or equal to 3"),
    ({"metrics": [metric("a")], "marginal_score": 96}, "marginal_score (96.0) must be below pass_score"),
])
def test_config_errors_name_the_field(doc, message):
    with pytest.raises(CanaryConfigError) as err:
        parse_canary(doc)
    assert message in str(err.value)


def test_the_policy_may_carry_a_canary_section_per_environment(tmp_path):
    path = tmp_path / "remediation.yaml"
    path.write_text("environments:\n  staging:\n    canary:\n      min_points: 12\n      metrics:\n"
                    "        - {name: cpu, source: cloudwatch, metric: CPUUtilization}\n")
    policy = RemediationPolicy.load(path)
    assert policy.for_env("staging").canary.min_points == 12 and policy.for_env("dev").canary is None

    class Plan:  # resolve_config reads spec.canary and metadata.environment only
        class spec:  # noqa: N801
            canary = None

        class metadata:  # noqa: N801
            environment = "staging"

    assert resolve_config(Plan, policy).min_points == 12
    assert resolve_config(Plan, None) is None
    path.write_text("environments:\n  staging:\n    canary:\n      metrics:\n"
                    "        - {name: cpu, source: cloudwatch, metric: CPUUtilization, weight: 0}\n")
    with pytest.raises(RemediationPolicyError, match=r"environments\.staging\.canary\.metrics\.0\.weight: Input should be greater than 0"):
        RemediationPolicy.load(path)
