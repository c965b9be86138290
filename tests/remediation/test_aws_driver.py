"""The AWS driver end to end through boto3 against moto: a 12-instance ASG on a launch template
(plus standalone instances), three waves, and a canary made unhealthy that rolls back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import boto3
import pytest

from qlrf.remediation.drivers import driver_for
from qlrf.remediation.drivers.aws import AwsDriver, AwsDriverConfig, config_from_env
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from tests.remediation.support import (
    NOW,
    StopOneCanary,
    asg_images,
    asg_plan,
    audit_log,
    dry_run_first,
    kinds,
    seed_asg,
    sent,
    trail,
)
from tests.servers.moto_server import start_moto_thread, use_loopback


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    with start_moto_thread(default_amis=False) as url:
        use_loopback(mp, url, str(tmp_path_factory.mktemp("aws")))
        yield url
    mp.undo()


@pytest.fixture(scope="module")
def gate():
    return Gate.embedded()


def driver(url: str) -> AwsDriver:
    return AwsDriver(AwsDriverConfig(endpoint_url=url, poll_interval=0.05, replace_timeout=20, max_attempts=2))


def run(plan, drv, gate, audit):
    return execute_plan(plan, driver=drv, gate=gate, audit=audit, requested_by="sensor:drift_findings_sensor",
                        fleet_size=200, now=NOW, poll_interval=0.2, log=lambda _m: None)


def test_three_waves_move_the_asg_and_standalone_instances_to_the_golden_ami(moto, gate, tmp_path):
    session = boto3.Session()
    estate = seed_asg(session, moto, name="web", standalone=2)
    ec2 = session.client("ec2", region_name=estate.region, endpoint_url=moto)
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    plan = asg_plan(estate)
    result = run(plan, driver(moto), gate, audit)

    assert result.state == "succeeded", result.reason
    version, images = asg_images(session, moto, estate)
    assert version == "2" and len(images) == 12 and set(images.values()) == {estate.golden_ami}
    assert not set(images) & set(estate.members)  # every original member was replaced
    lt = ec2.describe_launch_template_versions(LaunchTemplateId=estate.template_id, Versions=["2"])["LaunchTemplateVersions"][0]
    assert lt["LaunchTemplateData"]["ImageId"] == estate.golden_ami
    assert lt["LaunchTemplateData"]["InstanceType"] == "t3.micro"  # copied from version 1
    types = {i["InstanceType"] for r in ec2.describe_instances(InstanceIds=list(images))["Reservations"] for i in r["Instances"]}
    assert types == {"t3.micro"}
    # 2 / 6 / 4 instances, max_unavailable 2 -> 1, 3 and 2 chunks
    assert [w.details["groups"][estate.asg]["chunks"] for w in result.waves] == [1, 3, 2]
    assert [len(w.details["groups"][estate.asg]["replaced"]) for w in result.waves] == [2, 6, 4]

    # standalone: replaced from the golden AMI with type, subnet and tags, old ones terminated
    for old in estate.standalone:
        new = next(v["replacement"] for w in result.waves for k, v in w.details["instances"].items() if k == old)
        inst = ec2.describe_instances(InstanceIds=[new])["Reservations"][0]["Instances"][0]
        tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
        assert inst["ImageId"] == estate.golden_ami and inst["InstanceType"] == "t3.small"
        assert tags["qlrf:replaces"] == old and tags["owner"] == "team-data" and tags["Name"] == "web-db"
        state = ec2.describe_instances(InstanceIds=[old])["Reservations"][0]["Instances"][0]["State"]["Name"]
        assert state == "terminated"
    assert kinds(audit).count("health_gate") == 3 and audit.verify().ok


def test_unhealthy_canary_rolls_back_to_the_previous_version_and_stops(moto, gate, tmp_path):
    session = boto3.Session()
    estate = seed_asg(session, moto, name="api")
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    sabotage = StopOneCanary(driver(moto), estate.region, moto)
    result = run(asg_plan(estate, timeout_seconds=1), sabotage, gate, audit)

    assert result.state == "rolled_back", result.reason
    assert "health gate failed after wave 0 (canary): 1/2 healthy" in result.reason
    assert f"'{sabotage.stopped}': 'state stopped'" in result.reason
    assert [w.index for w in result.waves] == [0]  # waves 1 and 2 never ran
    version, images = asg_images(session, moto, estate)
    assert version == "1" and len(images) == 12 and set(images.values()) == {estate.old_ami}
    # the 10 untouched originals are still there; the 2 canaries were replaced by old-image instances
    assert len(set(images) & set(estate.members)) == 10
    assert result.rollback["groups"][estate.asg]["version"] == "1"

    assert kinds(audit) == ["policy_decision", "wave_start", "health_gate", "wave_end", "policy_decision",
                            "rollback", "execution_end"]
    health = audit.records(kind="health_gate")[0].data
    assert health["healthy"] is False and health["details"]["unhealthy"] == {sabotage.stopped: "state stopped"}
    lines = trail(audit)
    assert any("rollback wave 0: allow=True" in line for line in lines)
    assert any("performed=True waves=[0]: health gate failed after wave 0" in line for line in lines)


def test_a_group_on_latest_is_pinned_before_the_new_version_exists(moto, tmp_path):
    session = boto3.Session()
    estate = seed_asg(session, moto, name="pin", size=2)
    asg = session.client("autoscaling", region_name=estate.region, endpoint_url=moto)
    asg.update_auto_scaling_group(AutoScalingGroupName=estate.asg,
                                  LaunchTemplate={"LaunchTemplateId": estate.template_id, "Version": "$Latest"})
    drv = driver(moto)
    details = drv.prepare(asg_plan(estate))
    group = details["groups"][estate.asg]
    assert group["pinned"] is True and group["from_version"] == "$Latest" and group["new_version"] == "2"
    version, _ = asg_images(session, moto, estate)
    assert version == "1"  # pinned to what it ran: creating version 2 changed nothing it launches


def test_config_from_env_and_factory(monkeypatch):
    config = config_from_env({"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "QLRF_REMEDIATION_POLL_SECONDS": "0.5",
                              "QLRF_REMEDIATION_REPLACE_TIMEOUT": "30", "QLRF_AWS_MAX_ATTEMPTS": "3"})
    assert (config.endpoint_url, config.poll_interval, config.replace_timeout, config.max_attempts) == (
        "http://127.0.0.1:1", 0.5, 30.0, 3)
    with pytest.raises(ValueError, match="QLRF_REMEDIATION_POLL_SECONDS"):
        config_from_env({"QLRF_REMEDIATION_POLL_SECONDS": "-1"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2")
    assert driver_for("aws").config.endpoint_url == "http://127.0.0.1:2"
    with pytest.raises(ValueError, match="no execution driver"):
        driver_for("openstack")


def server_state(session, url, estate) -> tuple:
    """What a mutating call would change: the group's version and members, launch-template versions, instances."""
    ec2 = session.client("ec2", region_name=estate.region, endpoint_url=url)
    version, images = asg_images(session, url, estate)
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=estate.template_id)["LaunchTemplateVersions"]
    states = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    return version, images, len(versions), states


@pytest.mark.slow
def test_dry_run_changes_nothing_and_lists_the_calls_the_real_run_makes(moto, gate, tmp_path):
    session = boto3.Session()
    estate = seed_asg(session, moto, name="dry", standalone=2)
    plan = asg_plan(estate)
    before = server_state(session, moto, estate)
    dry_driver = driver(moto)
    dry, audit = dry_run_first(plan, dry_driver, tmp_path)
    assert server_state(session, moto, estate) == before  # nothing changed on the server
    assert Counter(c.name for c in dry.calls) == {
        "ec2.CreateLaunchTemplateVersion": 1, "autoscaling.UpdateAutoScalingGroup": 1,
        "autoscaling.TerminateInstanceInAutoScalingGroup": 12, "ec2.RunInstances": 2, "ec2.TerminateInstances": 2}
    assert {c.target for c in dry.calls if c.operation == "TerminateInstanceInAutoScalingGroup"} == set(estate.members)
    assert [len(w.calls) for w in dry.waves] == [1 + 2, 6 + 2, 4 + 2]  # switch + canary; batches with one standalone each
    real = driver(moto)
    assert run(plan, real, gate, audit).state == "succeeded"
    assert sent(real, params=False) == sent(dry_driver, params=False)  # the dry run names the new version "(new)"


@pytest.mark.slow
def test_cli_plan_execute_only_dry_runs(moto, tmp_path):
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
    assert refused.returncode == 2 and "a plan file only dry-runs (add --dry-run)" in refused.stderr
    no_fleet = qlrf("--dry-run")
    assert no_fleet.returncode == 2 and "give --fleet-size" in no_fleet.stderr
    done = qlrf("--dry-run", "--fleet-size", "200")
    assert done.returncode == 0, done.stderr
    assert "nothing was changed" in done.stdout
    assert done.stdout.count("aws autoscaling.TerminateInstanceInAutoScalingGroup") == 4
    assert f"aws ec2.CreateLaunchTemplateVersion {estate.template_id}" in done.stdout
    assert "aws ec2.RunInstances" in done.stdout and "aws ec2.TerminateInstances" in done.stdout
    assert server_state(session, moto, estate) == before
    audit = audit_log(f"sqlite:///{tmp_path / 'home' / 'qlrf.db'}")
    assert [r.kind for r in audit.records()] == ["dry_run"] and audit.records()[0].actor.startswith("cli:")
