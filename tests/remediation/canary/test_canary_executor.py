"""Canary analysis inside execute_plan, on moto with the real AWS driver and CloudWatch: a good
canary lets the plan go on, a bad one rolls the wave back (the reason names the metric), and
missing metrics, gaps or clock skew pause the plan for a human with nothing further changed."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from qlrf.remediation.canary.analyst import CanaryAnalyst
from qlrf.remediation.canary.sources.cloudwatch import CloudWatchSource
from qlrf.remediation.drivers.aws import AwsDriver, AwsDriverConfig
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from qlrf.remediation.plans import PatchPlan
from tests.remediation.canary.seed import Telemetry, put_cloudwatch
from tests.remediation.support import NOW, asg_images, asg_plan, audit_log, kinds, seed_asg
from tests.remediation.test_aws_driver import moto  # noqa: F401 - the module's moto server

pytestmark = pytest.mark.slow
CANARY = {"min_points": 10, "lookback_seconds": 900, "step_seconds": 60,
          "metrics": [{"name": "cpu", "source": "cloudwatch", "metric": "CPUUtilization", "allowed_increase": 1.25},
                      {"name": "net", "source": "cloudwatch", "metric": "NetworkIn", "direction": "decrease"}]}
MINUTES = [NOW - timedelta(minutes=15 - i) for i in range(15)]


def agent(inner: AwsDriver, cw, canary: str):
    """After each wave the new machines report metrics, shaped by ``canary`` ("good", "bad",
    "missing", "gap", "skew"); the baseline reports normally."""
    seeded: set[str] = set()

    def report(plan, index):
        changed, baseline = inner.members(plan, index)
        new_base = [i for i in baseline if i not in seeded]
        put_cloudwatch(cw, "CPUUtilization", {i: [40 + n % 3 for n in range(15)] for i in new_base}, MINUTES)
        put_cloudwatch(cw, "NetworkIn", dict.fromkeys(new_base, 1000.0), MINUTES)
        new = [i for i in changed if i not in seeded]
        cpu = 90.0 if canary == "bad" else 41.0
        times = {"missing": [], "gap": MINUTES[:5] + MINUTES[11:], "skew": [t + timedelta(minutes=6) for t in MINUTES]}
        at = times.get(canary, MINUTES)
        if at:
            put_cloudwatch(cw, "CPUUtilization", dict.fromkeys(new, cpu), at)
            put_cloudwatch(cw, "NetworkIn", dict.fromkeys(new, 1000.0), at)
        seeded.update(new_base, new)

    return Telemetry(inner, report)


def with_canary(plan: PatchPlan, canary: dict) -> PatchPlan:
    doc = plan.model_dump(mode="json", exclude={"content_hash"})
    doc["spec"]["canary"] = canary
    return PatchPlan.model_validate(doc).sealed()


def execute(url: str, name: str, canary: str, tmp_path):
    session = boto3.Session()
    estate = seed_asg(session, url, name=name, size=4)
    cw = session.client("cloudwatch", region_name=estate.region, endpoint_url=url)
    driver = agent(AwsDriver(AwsDriverConfig(endpoint_url=url, poll_interval=0.05, replace_timeout=20,
                                             max_attempts=2)), cw, canary)
    analyst = CanaryAnalyst({"cloudwatch": CloudWatchSource(cw)}, now=lambda: NOW)
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    plan = with_canary(asg_plan(estate), CANARY)
    result = execute_plan(plan, driver=driver, gate=Gate.embedded(), audit=audit, requested_by="sensor:drift_findings_sensor",
                          fleet_size=200, now=NOW, poll_interval=0.2, log=lambda _m: None, analyst=analyst)
    return result, audit, estate, session


def test_a_good_canary_goes_on_and_the_last_wave_has_no_baseline_left(moto, tmp_path):  # noqa: F811
    result, audit, estate, session = execute(moto, "good", "good", tmp_path)
    assert result.state == "succeeded", result.reason
    verdicts = [w.details["canary_analysis"]["verdict"] for w in result.waves]
    assert verdicts == ["pass", "pass", "skipped"]
    first = result.waves[0].details["canary_analysis"]
    assert len(first["canary"]) == 1 and len(first["baseline"]) == 3  # 1 of 4 patched (10 %, rounded up)
    cpu = next(m for m in first["metrics"] if m["name"] == "cpu")
    assert cpu["classification"] == "pass" and cpu["n_canary"] == 15 and cpu["n_baseline"] == 45
    assert {"u", "p_value", "effect", "ratio", "hl_shift", "canary_median", "baseline_median"} <= set(cpu)
    records = audit.records(kind="canary_analysis")
    assert [r.data["verdict"] for r in records] == verdicts and records[0].actor == "canary_analysis"
    assert records[0].data["thresholds"]["min_points"] == 10 and audit.verify().ok
    assert result.summary()["waves"][0]["canary_analysis"] == "pass"


def test_a_bad_canary_rolls_back_and_names_the_metric(moto, tmp_path):  # noqa: F811
    result, audit, estate, session = execute(moto, "bad", "bad", tmp_path)
    assert result.state == "rolled_back", result.reason
    assert result.reason.startswith("canary analysis failed after wave 0 (canary): score 50.0 (pass 95); failed: cpu (high")
    assert [w.index for w in result.waves] == [0]
    version, images = asg_images(session, moto, estate)
    assert version == "1" and set(images.values()) == {estate.old_ami}  # the canary is back on the old image
    assert kinds(audit) == ["policy_decision", "wave_start", "health_gate", "wave_end", "canary_analysis",
                            "policy_decision", "rollback", "execution_end"]
    record = audit.records(kind="canary_analysis")[0].data
    cpu = next(m for m in record["metrics"] if m["name"] == "cpu")
    assert record["verdict"] == "fail" and cpu["classification"] == "high" and cpu["p_value"] < 0.01
    assert cpu["ratio"] == pytest.approx(90 / 41, rel=0.05) and cpu["allowed_increase"] == 1.25


@pytest.mark.parametrize(("bad", "named"), [
    ("missing", "missing: no points for canary target(s) i-"),
    ("gap", "gap: canary target i-"),
    ("skew", "clock skew: canary series start +360s"),
])
def test_bad_metrics_pause_the_plan_with_a_named_reason_and_change_nothing_further(moto, tmp_path, bad, named):  # noqa: F811
    result, audit, estate, session = execute(moto, f"pause-{bad}", bad, tmp_path)
    assert result.state == "paused", result.reason
    assert result.reason.startswith("canary analysis inconclusive after wave 0 (canary): not enough data to judge: cpu: ")
    assert named in result.reason and "a human decides" in result.reason
    assert [w.index for w in result.waves] == [0] and kinds(audit).count("wave_start") == 1
    version, images = asg_images(session, moto, estate)
    golden = [i for i, image in images.items() if image == estate.golden_ami]
    assert version == "2" and len(golden) == 1 and len(images) == 4  # the canary stays for the human; no other wave ran
    assert "rollback" not in kinds(audit)
