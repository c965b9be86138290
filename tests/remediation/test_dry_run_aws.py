"""Dry run against moto: the AWS driver lists every mutating call and changes nothing; the real run
that follows makes exactly those calls."""

from __future__ import annotations

from collections import Counter

import boto3
import pytest

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
    assert [(c.name, c.target) for c in real.calls.calls] == [(c.name, c.target) for c in dry.calls]
