"""Dry run against moto: the AWS driver lists every mutating call and changes nothing; the real run
that follows makes exactly those calls."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import boto3
import pytest

from qlrf.remediation.audit import AuditLog
from qlrf.remediation.calls import CallRecorder
from qlrf.remediation.drivers.aws import AwsDriver, AwsDriverConfig
from qlrf.remediation.dryrun import dry_run_plan
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from tests.remediation.support import NOW, asg_images, asg_plan, audit_log, kinds, seed_asg
from tests.servers.moto_server import start_moto_thread, use_loopback

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    with start_moto_thread(default_amis=False) as url:
        use_loopback(mp, url, str(tmp_path_factory.mktemp("aws")))
        yield url
    mp.undo()


def driver(url: str, *, dry_run: bool) -> AwsDriver:
    config = AwsDriverConfig(endpoint_url=url, poll_interval=0.05, replace_timeout=20, max_attempts=2)
    return AwsDriver(config, recorder=CallRecorder(dry_run=dry_run))


def server_state(session, url, estate) -> tuple:
    """What a mutating call would change: the group's version and members, launch-template versions, instances."""
    ec2 = session.client("ec2", region_name=estate.region, endpoint_url=url)
    version, images = asg_images(session, url, estate)
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=estate.template_id)["LaunchTemplateVersions"]
    states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    return version, images, len(versions), states


def test_dry_run_changes_nothing_and_lists_the_calls_the_real_run_makes(moto, tmp_path):
    session = boto3.Session()
    estate = seed_asg(session, moto, name="dry", standalone=2)
    plan = asg_plan(estate)
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    before = server_state(session, moto, estate)

    dry = dry_run_plan(plan, driver=driver(moto, dry_run=True), gate=Gate.embedded(), audit=audit,
                       requested_by="cli:alice", fleet_size=200, now=NOW, log=lambda _: None)
    assert dry.error is None and dry.would_run
    assert server_state(session, moto, estate) == before  # nothing changed on the server
    assert kinds(audit) == ["dry_run"]  # audited as a dry run, never as an execution
    names = Counter(c.name for c in dry.calls)
    assert names == {"ec2.CreateLaunchTemplateVersion": 1, "autoscaling.UpdateAutoScalingGroup": 1,
                     "autoscaling.TerminateInstanceInAutoScalingGroup": 12, "ec2.RunInstances": 2,
                     "ec2.TerminateInstances": 2}
    assert {c.target for c in dry.calls if c.operation == "TerminateInstanceInAutoScalingGroup"} == set(estate.members)
    assert [len(w.calls) for w in dry.waves] == [1 + 2, 6 + 2, 4 + 2]  # switch + canary; batches with one standalone each

    real = driver(moto, dry_run=False)
    result = execute_plan(plan, driver=real, gate=Gate.embedded(), audit=audit, requested_by="cli:alice",
                          fleet_size=200, now=NOW, poll_interval=0.2, log=lambda _: None)
    assert result.state == "succeeded", result.reason
    assert [(c.name, c.target) for c in real.recorder.calls] == [(c.name, c.target) for c in dry.calls]


def test_cli_plan_execute_dry_run(moto, tmp_path):
    session = boto3.Session()
    estate = seed_asg(session, moto, name="cli", size=4, standalone=1)
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(asg_plan(estate).to_yaml())
    before = server_state(session, moto, estate)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    env.update(QLRF_HOME=str(tmp_path / "home"), AWS_ENDPOINT_URL=moto)

    def qlrf(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "qlrf.cli", "plan", "execute", str(plan_file), *args],
                              capture_output=True, text=True, env=env, timeout=120)

    refused = qlrf()
    assert refused.returncode == 2 and "only dry-runs (add --dry-run)" in refused.stderr
    no_fleet = qlrf("--dry-run")
    assert no_fleet.returncode == 2 and "give --fleet-size" in no_fleet.stderr
    done = qlrf("--dry-run", "--fleet-size", "200")
    assert done.returncode == 0, done.stderr
    assert "nothing was changed" in done.stdout
    assert done.stdout.count("aws autoscaling.TerminateInstanceInAutoScalingGroup") == 4
    assert f"aws ec2.CreateLaunchTemplateVersion {estate.template_id}" in done.stdout
    assert "aws ec2.RunInstances" in done.stdout and "aws ec2.TerminateInstances" in done.stdout
    assert server_state(session, moto, estate) == before
    audit = AuditLog(f"sqlite:///{tmp_path / 'home' / 'qlrf.db'}")
    assert [r.kind for r in audit.records()] == ["dry_run"] and audit.records()[0].actor.startswith("cli:")
