"""The AWS driver end to end through boto3 against moto: a 12-instance ASG on a launch template
(plus standalone instances), three waves, and a canary made unhealthy that rolls back."""

from __future__ import annotations

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
    kinds,
    seed_asg,
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
