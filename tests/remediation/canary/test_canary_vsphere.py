"""Canary analysis on vSphere, on vcsim: QueryPerf through pyVmomi (counter resolved by name, one
query per VM) and the vSphere driver's clones as the canary. vcsim's samples are one recorded
pattern with noise for every VM, so the canary passes: this proves the protocol and the wiring,
not a sick VM (the moto tests do that)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qlrf.remediation.canary.analyst import CanaryAnalyst
from qlrf.remediation.canary.config import MetricSpec, parse_canary
from qlrf.remediation.canary.judge import judge
from qlrf.remediation.canary.metrics import MetricSourceError, Window, collect
from qlrf.remediation.canary.sources.vsphere import VspherePerfSource
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from qlrf.remediation.plans import PatchPlan
from tests.remediation.support import NOW, audit_log
from tests.remediation.test_vsphere_driver import make_driver, make_plan, vcsim  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow
CANARY = {"step_seconds": 20, "lookback_seconds": 600,  # vCenter's real-time interval: 30 samples in 10 min
          "metrics": [{"name": "cpu", "source": "vsphere", "metric": "cpu.usage.average",
                       "allowed_increase": 2.0, "allowed_decrease": 0.5}]}


def test_query_perf_and_the_driver_clones_as_canary(vcsim, tmp_path):  # noqa: F811
    server, si, vc, rows, keys = vcsim
    source = VspherePerfSource(si)
    uuids = [r["config.instanceUuid"] for r in rows[3:6]]
    window = Window(NOW - timedelta(minutes=10), NOW, 20)
    got = source.fetch(MetricSpec(name="cpu", source="vsphere", metric="cpu.usage.average"), [*uuids, "no-such-uuid"], window)
    assert sorted(got) == sorted(uuids)  # an unknown VM has no series: the judge names it missing
    first = got[uuids[0]]
    assert len(first) == 30 and first.times[-1] == NOW.timestamp() and first.times[1] - first.times[0] == 20
    cfg = parse_canary(CANARY)
    verdict = judge(cfg, collect(cfg, {"vsphere": source}, uuids[:1], uuids[1:], window))
    assert (verdict.metrics[0].n_canary, verdict.metrics[0].n_baseline) == (30, 60)
    with pytest.raises(MetricSourceError, match="no performance counter 'cpu.nonsense.average'"):
        source.fetch(MetricSpec(name="x", source="vsphere", metric="cpu.nonsense.average"), uuids, window)

    targets = rows[3:6]
    waves = [{"name": "canary", "canary": True, "instances": [targets[0]["config.instanceUuid"]]},
             {"name": "batch-1", "instances": [r["config.instanceUuid"] for r in targets[1:]]}]
    doc = make_plan(vc, targets, waves).model_dump(mode="json", exclude={"content_hash"})
    doc["spec"]["canary"] = CANARY
    plan = PatchPlan.model_validate(doc).sealed()
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    result = execute_plan(plan, driver=make_driver(vc), gate=Gate.embedded(), audit=audit,
                          requested_by="sensor:drift_findings_sensor", fleet_size=100, now=NOW, poll_interval=0.1,
                          log=lambda _m: None, analyst=CanaryAnalyst({"vsphere": source}, now=lambda: NOW))
    assert result.state == "succeeded", result.reason
    first, last = (w.details["canary_analysis"] for w in result.waves)
    assert first["verdict"] == "pass" and last["verdict"] == "skipped"
    (clone,) = first["canary"]
    assert clone != targets[0]["config.instanceUuid"] and first["baseline"] == [r["config.instanceUuid"] for r in targets[1:]]
    assert first["metrics"][0]["n_canary"] == 30 and first["metrics"][0]["n_baseline"] == 60
