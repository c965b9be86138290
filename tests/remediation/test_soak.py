"""The health gate's soak period (issue 12 item 9): once healthy, a wave must stay healthy for
``health_gate.soak_seconds``; a canary that dies a second after launch fails its wave."""

from __future__ import annotations

import boto3
import pytest

from qlrf.remediation.drivers.aws import AwsDriver, AwsDriverConfig
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from tests.remediation.support import NOW, asg_images, asg_plan, audit_log, seed_asg
from tests.remediation.test_executor import Clock, MemoryDriver, plan, run
from tests.servers.moto_server import start_moto_thread, use_loopback


class DiesInSoak(MemoryDriver):
    """The canary comes up healthy, then one machine dies on the `die_on_look`-th look."""

    die_on_look: int = 3

    def health(self, plan, index):
        if index == 0 and self.looks + 1 == self.die_on_look:
            self.bad.add(sorted(i for i, img in self.images.items() if img == "golden")[0])
        return super().health(plan, index)


@pytest.fixture()
def gate_and_audit(tmp_path):
    return Gate.embedded(), audit_log(f"sqlite:///{tmp_path / 'audit.db'}")


def test_a_healthy_wave_is_watched_for_the_whole_soak(gate_and_audit):
    gate, audit = gate_and_audit
    driver, clock = MemoryDriver(), Clock()
    result = run(plan(soak_seconds=20), driver, gate, audit, clock)
    assert result.state == "succeeded"
    assert [c for c in driver.calls if c[0] == "health"].count(("health", 0)) == 5  # healthy, then 4 looks x 5 s
    record = audit.records(kind="health_gate")[0].data
    assert (record["healthy"], record["polls"], record["soak_seconds"], record["waited_seconds"]) == (True, 5, 20, 20)


def test_a_canary_that_dies_during_the_soak_fails_its_wave(gate_and_audit):
    gate, audit = gate_and_audit
    driver, clock = DiesInSoak(), Clock()
    result = run(plan(soak_seconds=60), driver, gate, audit, clock)
    assert result.state == "rolled_back"
    assert "health gate failed after wave 0 (canary): 1/2 healthy within 60s (unhealthy 10.0s into the 60s soak)" in result.reason
    assert ("run_wave", 1) not in driver.calls and ("rollback", (0,)) in driver.calls
    assert set(driver.images.values()) == {"old"}


def test_without_a_soak_the_same_canary_would_have_passed(gate_and_audit):
    gate, audit = gate_and_audit
    driver = DiesInSoak()
    assert run(plan(), driver, gate, audit).state == "succeeded"  # what the soak is for


@pytest.mark.slow
def test_on_moto_a_canary_that_stops_a_second_after_launch_fails_its_wave(tmp_path):
    """The real AWS driver and embedded gate: the fresh canary instance stops during the soak (moto's ASG
    replaces a terminated member at once, so stopping it is what leaves the group with a dead canary)."""
    mp = pytest.MonkeyPatch()
    with start_moto_thread(default_amis=False) as url:
        use_loopback(mp, url, str(tmp_path / "aws"))
        session = boto3.Session()
        estate = seed_asg(session, url, name="soak", size=4)
        inner = AwsDriver(AwsDriverConfig(endpoint_url=url, poll_interval=0.05, replace_timeout=20, max_attempts=2))
        killed: list[str] = []

        class TerminateCanaryInSoak:
            def prepare(self, p):
                return inner.prepare(p)

            def run_wave(self, p, index):
                return inner.run_wave(p, index)

            def health(self, p, index):
                report = inner.health(p, index)
                if index == 0 and report.healthy and not killed:  # healthy once: now it dies
                    _, images = asg_images(session, url, estate)
                    killed.append(sorted(i for i, ami in images.items() if ami == estate.golden_ami)[0])
                    session.client("ec2", region_name=estate.region, endpoint_url=url).stop_instances(InstanceIds=killed)
                return report

            def rollback(self, p, waves_done):
                return inner.rollback(p, waves_done)

        plan_ = asg_plan(estate, soak_seconds=2, timeout_seconds=5)
        audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
        result = execute_plan(plan_, driver=TerminateCanaryInSoak(), gate=Gate.embedded(), audit=audit,
                              requested_by="sensor:drift_findings_sensor", fleet_size=200, now=NOW, poll_interval=0.2,
                              log=lambda _m: None)
        version, images = asg_images(session, url, estate)
    mp.undo()
    assert killed
    assert result.state == "rolled_back", result.reason
    assert "into the 2s soak" in result.reason and [w.state for w in result.waves] == ["unhealthy"]
    assert version == "1" and estate.golden_ami not in images.values()  # back on the old launch template
    soak = audit.records(kind="health_gate")[0].data
    assert soak["healthy"] is False and soak["soak_seconds"] == 2
