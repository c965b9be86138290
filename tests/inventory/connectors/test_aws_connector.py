"""AWS connector through real boto3 against a loopback moto server (and a fault proxy in front of it).

Estate (seeded once per module):
- account 123456789012 (default credentials): eu-west-1 with 6 instances + a 2-member ASG,
  us-west-2 with 4 instances + a 1-member ASG plus three empty groups pinned to $Default, to
  version 2 and to a launch configuration, and one whose template says resolve:ssm:<parameter>;
- account 222222222222 (through STS AssumeRole): eu-west-1 with 3 instances + a 1-member ASG.
"""

from __future__ import annotations

import copy
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
import pytest

from qlrf.inventory.connectors.aws import AwsConfig, client_config, config_from_env, discover, image_fact
from qlrf.inventory.contract import inventory_table, snapshot_table
from qlrf.inventory.normalize.aws import normalise
from qlrf.inventory.tags import TagMapping
from tests.fakes.base import free_port
from tests.servers.moto_server import (
    FAKE_CREDENTIALS,
    FaultProxy,
    Request,
    assumed_session,
    ec2_error,
    query_error,
    seed_region,
    start_moto_thread,
    throttle_first,
    use_loopback,
)

DEFAULT = "123456789012"
SECOND = "222222222222"
ROLE = f"arn:aws:iam::{SECOND}:role/qlrf-discovery"
DENIED_ROLE = "arn:aws:iam::444444444444:role/qlrf-discovery"
REGIONS = ["eu-west-1", "us-west-2"]
AT = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
SECRET = FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("aws"))
    # Without moto's ~1,300 default Amazon AMIs per region (seconds of start-up per account/region);
    # the seeder publishes an image of its own as the "public" one instead.
    with start_moto_thread(default_amis=False) as url, pytest.MonkeyPatch.context() as mp:
        use_loopback(mp, url, tmp)
        plan = {
            (DEFAULT, "eu-west-1"): (boto3.Session, {"instances": 6, "batch": 2, "asg_size": 2}),
            (DEFAULT, "us-west-2"): (boto3.Session, {"instances": 4, "batch": 2, "asg_size": 1}),
            (SECOND, "eu-west-1"): (
                lambda: assumed_session(url, ROLE),
                {"instances": 3, "batch": 3, "asg_size": 1},
            ),
        }
        with ThreadPoolExecutor(len(plan)) as pool:
            jobs = {
                key: pool.submit(lambda k=key, s=s, kw=kw: seed_region(s(), k[1], **kw))
                for key, (s, kw) in plan.items()
            }
            seeded = {key: job.result() for key, job in jobs.items()}
        _pinned_groups(boto3.Session(), seeded[(DEFAULT, "us-west-2")])
        messages: list[str] = []
        result = discover(
            AwsConfig(regions=REGIONS, role_arns=[ROLE]),
            mapping=TagMapping(),
            discovered_at=AT,
            progress=messages.append,
        )
        yield {"url": url, "tmp": tmp, "seeded": seeded, "result": result, "messages": messages, "mp": mp}


def _pinned_groups(session: boto3.Session, seeded) -> None:
    """Empty groups in us-west-2 pinned to $Default, to version 2, to a launch configuration, to SSM."""
    ec2 = session.client("ec2", region_name="us-west-2")
    asg = session.client("autoscaling", region_name="us-west-2")
    ssm = session.client("ssm", region_name="us-west-2")
    common = {"MinSize": 0, "MaxSize": 1, "DesiredCapacity": 0, "AvailabilityZones": ["us-west-2a"]}
    lt = {"LaunchTemplateId": seeded.launch_template_id}
    asg.create_auto_scaling_group(AutoScalingGroupName="pinned-default", LaunchTemplate=lt, **common)
    asg.create_auto_scaling_group(
        AutoScalingGroupName="pinned-2", LaunchTemplate={**lt, "Version": "2"}, **common
    )
    asg.create_launch_configuration(
        LaunchConfigurationName="legacy-lc", ImageId=seeded.images["v2"], InstanceType="t3.micro"
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="legacy", LaunchConfigurationName="legacy-lc", **common
    )
    ssm.put_parameter(
        Name="/qlrf/golden-web", Value=seeded.images["v1"], Type="String", DataType="aws:ec2:image"
    )
    ec2.create_launch_template(
        LaunchTemplateName="ssm-web", LaunchTemplateData={"ImageId": "resolve:ssm:/qlrf/golden-web"}
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName="ssm-web", LaunchTemplate={"LaunchTemplateName": "ssm-web"}, **common
    )


def _scope(rows: list[dict], account: str, region: str) -> list[dict]:
    return [r for r in rows if r["account"] == account and r["region"] == region]


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


# -------------------------------------------------------------------------------------------------
# The happy path: parity, counts, facts
# -------------------------------------------------------------------------------------------------


def test_vm_rows_equal_the_file_normaliser_on_the_same_describe_instances_json(estate):
    result = estate["result"]
    sessions = {DEFAULT: boto3.Session(), SECOND: assumed_session(estate["url"], ROLE)}
    for (account, region), _ in estate["seeded"].items():
        ec2 = sessions[account].client("ec2", region_name=region)
        doc = {"Reservations": []}
        for page in ec2.get_paginator("describe_instances").paginate():
            doc["Reservations"].extend(page["Reservations"])
        # What `aws ec2 describe-instances --output json` would have written to a file.
        exported = json.loads(json.dumps(doc, default=_iso))
        from_file = normalise(
            [(f"{account}-{region}.json", exported)], mapping=TagMapping(), discovered_at=AT
        )
        assert from_file.errors == []
        live = sorted(_scope(result.vms, account, region), key=lambda r: r["asset_id"])
        assert live == sorted(from_file.vms, key=lambda r: r["asset_id"])
    assert result.errors == []
    inventory_table(result.vms)  # the rows satisfy the Parquet contract
    snapshot_table(result.snapshots)


def test_counts_per_account_and_region_and_progress(estate):
    result, seeded = estate["result"], estate["seeded"]
    assert result.failed_scopes == []
    for (account, region), s in seeded.items():
        vms = _scope(result.vms, account, region)
        assert {v["asset_id"] for v in vms} == set(s.instance_ids) | set(s.asg_members)
    assert len(result.vms) == 6 + 2 + 4 + 1 + 3 + 1
    assert {v["account"] for v in _scope(result.vms, SECOND, "eu-west-1")} == {SECOND}
    messages = estate["messages"]
    assert f"aws {SECOND}: credentials ok ({ROLE})" in messages
    assert any(m.startswith(f"aws {DEFAULT}/eu-west-1: 8 VMs") for m in messages)
    assert any(m.startswith(f"aws {SECOND}/eu-west-1: 4 VMs") for m in messages)
    assert messages[-1].startswith("aws: 17 VMs from 4 account-regions in 2 accounts, 0 failed scopes")
    vm = next(v for v in result.vms if v["asset_id"] == seeded[(DEFAULT, "eu-west-1")].instance_ids[0])
    assert (vm["site"], vm["environment"], vm["owner"]) == ("lon1", "prod", "team-0")
    assert vm["name"] == "vm-eu-west-1-00000"
    member = next(v for v in result.vms if v["asset_id"] == seeded[(DEFAULT, "eu-west-1")].asg_members[0])
    assert member["group"] == "web-asg-eu-west-1"


def test_ami_facts_for_every_image_in_use_or_to_be_launched(estate):
    images = estate["result"].facts["images"]
    s = estate["seeded"][(DEFAULT, "eu-west-1")]
    mine = {i["image_id"]: i for i in _scope(images, DEFAULT, "eu-west-1")}
    assert set(mine) == {s.images["v1"], s.images["v2"], s.images["public"]}
    v1 = mine[s.images["v1"]]
    assert v1["found"] and v1["name"] == "golden-web-v1" and v1["owner_id"] == DEFAULT
    assert v1["tags"] == {"family": "golden-web", "version": "v1"}
    assert isinstance(v1["created_at"], datetime) and v1["created_at"].tzinfo is not None
    assert v1["deprecated_at"] is None and v1["state"] == "available"
    public = mine[s.images["public"]]
    assert public["public"] is True and public["name"] == "base-public"
    # The assumed account sees its own golden images.
    theirs = {i["name"] for i in _scope(images, SECOND, "eu-west-1")}
    assert {"golden-web-v1", "golden-web-v2"} <= theirs


def test_image_fact_carries_deprecation_and_missing_images():
    # moto does not implement EnableImageDeprecation, so the field mapping is checked on the API shape.
    image = {
        "ImageId": "ami-0123456789abcdef0",
        "Name": "golden-web-2026.10",
        "OwnerId": "801119661308",
        "ImageOwnerAlias": "amazon",
        "Public": True,
        "CreationDate": "2026-10-01T08:00:00.000Z",
        "DeprecationTime": "2027-04-01T00:00:00.000Z",
        "State": "available",
        "Tags": [{"Key": "family", "Value": "golden-web"}],
    }
    row = image_fact(image, image["ImageId"], DEFAULT, "eu-west-1", AT)
    assert row["deprecated_at"] == datetime(2027, 4, 1, tzinfo=UTC)
    assert row["created_at"] == datetime(2026, 10, 1, 8, tzinfo=UTC)
    assert (row["owner_id"], row["owner_alias"], row["public"], row["found"]) == (
        "801119661308",
        "amazon",
        True,
        True,
    )
    assert (row["account"], row["region"], row["tags"]) == (DEFAULT, "eu-west-1", {"family": "golden-web"})
    assert (row["platform"], row["image_type"]) == ("aws", "ami")
    gone = image_fact(None, "ami-deregistered", DEFAULT, "eu-west-1", AT)
    assert gone["found"] is False and gone["name"] is None and gone["tags"] == {}


def test_scaling_groups_say_which_ami_they_would_launch_now(estate):
    groups = {g["group_name"]: g for g in estate["result"].facts["scaling_groups"] if g["account"] == DEFAULT}
    west = estate["seeded"][(DEFAULT, "eu-west-1")]
    web = groups["web-asg-eu-west-1"]
    assert (web["platform"], web["account"], web["region"]) == ("aws", DEFAULT, "eu-west-1")
    assert (web["desired_capacity"], web["min_size"], web["max_size"]) == (2, 0, 4)
    assert web["members"] == west.asg_members and web["member_count"] == 2
    assert web["launch_source"] == "launch_template" and web["launch_template_version"] == "$Latest"
    # $Latest is version 3 (the public image), added after the members launched on version 2 (golden v2).
    assert web["launch_template_resolved_version"] == 3
    assert web["would_launch_image"] == west.asg_would_launch == west.images["public"]
    assert web["members_on_other_image"] == 2
    us = estate["seeded"][(DEFAULT, "us-west-2")]
    assert groups["pinned-default"]["launch_template_version"] == "$Default"
    assert groups["pinned-default"]["launch_template_resolved_version"] == 1
    assert groups["pinned-default"]["would_launch_image"] == us.images["v1"]
    assert groups["pinned-2"]["would_launch_image"] == us.images["v2"]
    assert groups["legacy"]["launch_source"] == "launch_configuration"
    assert groups["legacy"]["would_launch_image"] == us.images["v2"]
    assert groups["ssm-web"]["would_launch_image"] == us.images["v1"]  # resolve:ssm:/qlrf/golden-web
    assert all(g["resolve_error"] is None for g in groups.values())
    assert {g["group_name"] for g in estate["result"].facts["scaling_groups"] if g["account"] == SECOND} == {
        "web-asg-eu-west-1"
    }


def test_newest_completed_snapshot_of_each_attached_volume(estate):
    result = estate["result"]
    for (account, region), s in estate["seeded"].items():
        rows = {r["source_id"]: r for r in result.snapshots if r["asset_id"] in s.volume_owner.values()}
        rows = {vol: r for vol, r in rows.items() if r["region"] == region}
        assert {vol: r["snapshot_id"] for vol, r in rows.items()} == s.newest_snapshot, (account, region)
        for vol, row in rows.items():
            assert row["asset_id"] == s.volume_owner[vol] and row["platform"] == "aws"
            assert isinstance(row["created_at"], datetime)
    assert len(result.snapshots) == sum(len(s.newest_snapshot) for s in estate["seeded"].values())


def test_by_volume_snapshot_listing_finds_the_same_rows(estate):
    again = discover(
        AwsConfig(regions=["eu-west-1"], snapshot_listing="by_volume"), mapping=TagMapping(), discovered_at=AT
    )
    expected = [r for r in estate["result"].snapshots if r["region"] == "eu-west-1"]
    own = {v["asset_id"] for v in _scope(estate["result"].vms, DEFAULT, "eu-west-1")}
    assert sorted(again.snapshots, key=lambda r: r["snapshot_id"]) == sorted(
        (r for r in expected if r["asset_id"] in own), key=lambda r: r["snapshot_id"]
    )


# -------------------------------------------------------------------------------------------------
# Failures: region, part of a region, account, credentials, endpoint
# -------------------------------------------------------------------------------------------------


def _through(estate, *rules):
    proxy = FaultProxy(estate["url"], list(rules))
    return proxy


def test_a_failing_region_is_recorded_and_the_others_still_count(estate):
    def opt_in(req: Request):
        if req.service == "ec2" and req.region == "ap-southeast-2":
            return 401, ec2_error("OptInRequired", "You are not subscribed to this service.")
        return None

    with _through(estate, opt_in) as proxy:
        result = discover(
            AwsConfig(regions=["eu-west-1", "ap-southeast-2"], endpoint_url=proxy.url),
            mapping=TagMapping(),
            discovered_at=AT,
        )
    assert [f["scope"] for f in result.failed_scopes] == [f"aws:{DEFAULT}/ap-southeast-2"]
    assert "OptInRequired" in result.failed_scopes[0]["reason"]
    assert len(result.vms) == 8 and {v["region"] for v in result.vms} == {"eu-west-1"}


def test_a_failing_lookup_keeps_the_region_vms_and_names_the_part(estate):
    def no_snapshots(req: Request):
        if req.action == "DescribeSnapshots" and req.region == "eu-west-1":
            return 403, ec2_error(
                "UnauthorizedOperation", "You are not authorized to perform this operation."
            )
        return None

    with _through(estate, no_snapshots) as proxy:
        result = discover(
            AwsConfig(regions=REGIONS, endpoint_url=proxy.url), mapping=TagMapping(), discovered_at=AT
        )
    assert [f["scope"] for f in result.failed_scopes] == [f"aws:{DEFAULT}/eu-west-1:snapshots"]
    assert "UnauthorizedOperation" in result.failed_scopes[0]["reason"]
    assert len(_scope(result.vms, DEFAULT, "eu-west-1")) == 8
    assert {r["region"] for r in result.snapshots} == {"us-west-2"}


def test_a_role_that_cannot_be_assumed_is_named_and_other_accounts_still_count(estate):
    def deny(req: Request):
        if req.action == "AssumeRole" and req.params.get("RoleArn") == DENIED_ROLE:
            return 403, query_error("AccessDenied", "User is not authorized to perform: sts:AssumeRole")
        return None

    with _through(estate, deny) as proxy:
        result = discover(
            AwsConfig(
                regions=["eu-west-1"],
                role_arns=[ROLE, DENIED_ROLE],
                include_default=False,
                endpoint_url=proxy.url,
            ),
            mapping=TagMapping(),
            discovered_at=AT,
        )
    assert [f["scope"] for f in result.failed_scopes] == ["aws:444444444444/*"]
    reason = result.failed_scopes[0]["reason"]
    assert DENIED_ROLE in reason and "AccessDenied" in reason
    assert {v["account"] for v in result.vms} == {SECOND} and len(result.vms) == 4


def test_expired_credentials_are_a_clear_error_without_the_secret(estate, caplog):
    def expired(req: Request):
        if req.action in ("GetCallerIdentity", "AssumeRole"):
            return 403, query_error("ExpiredToken", "The security token included in the request is expired")
        return None

    caplog.set_level(logging.DEBUG, logger="qlrf")
    with _through(estate, expired) as proxy:
        result = discover(
            AwsConfig(regions=["eu-west-1"], role_arns=[ROLE], endpoint_url=proxy.url),
            mapping=TagMapping(),
            discovered_at=AT,
        )
    reasons = {f["scope"]: f["reason"] for f in result.failed_scopes}
    assert set(reasons) == {"aws:default/*", f"aws:{SECOND}/*"}
    assert "default credentials" in reasons["aws:default/*"] and "expired" in reasons["aws:default/*"]
    assert ROLE in reasons[f"aws:{SECOND}/*"] and "expired" in reasons[f"aws:{SECOND}/*"]
    assert result.vms == []
    assert SECRET not in json.dumps(result.failed_scopes) and SECRET not in caplog.text


def test_missing_credentials_name_the_account(estate, monkeypatch, tmp_path):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = discover(
        AwsConfig(regions=["eu-west-1"], role_arns=[ROLE]), mapping=TagMapping(), discovered_at=AT
    )
    reasons = {f["scope"]: f["reason"] for f in result.failed_scopes}
    assert set(reasons) == {"aws:default/*", f"aws:{SECOND}/*"}
    assert "no AWS credentials found" in reasons["aws:default/*"]
    assert f"cannot assume {ROLE}" in reasons[f"aws:{SECOND}/*"]
    assert "no AWS credentials found" in reasons[f"aws:{SECOND}/*"]


def test_a_malformed_instance_is_rejected_with_its_scope_and_the_rest_kept(estate):
    instances_xml = (
        '<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>'
        "<reservationSet><item><reservationId>r-1</reservationId><ownerId>123456789012</ownerId><instancesSet>"
        "<item><instanceId>i-good</instanceId><imageId>ami-0deregistered0000</imageId>"
        "<instanceState><code>16</code><name>running</name></instanceState><instanceType>t3.micro</instanceType>"
        "<launchTime>2026-11-01T00:00:00.000Z</launchTime>"
        "<placement><availabilityZone>eu-central-1a</availabilityZone></placement>"
        "<tagSet><item><key>Name</key><value>good</value></item></tagSet></item>"
        "<item><instanceId>i-bad</instanceId><instanceState><code>16</code><name>running</name></instanceState></item>"
        "</instancesSet></item></reservationSet></DescribeInstancesResponse>"
    )

    def canned(req: Request):
        if req.action == "DescribeInstances" and req.region == "eu-central-1":
            return 200, instances_xml
        return None

    with _through(estate, canned) as proxy:
        result = discover(
            AwsConfig(regions=["eu-central-1"], endpoint_url=proxy.url),
            mapping=TagMapping(),
            discovered_at=AT,
        )
    assert [v["asset_id"] for v in result.vms] == ["i-good"] and result.vms[0]["name"] == "good"
    assert len(result.errors) == 1
    error = result.errors[0]
    assert (error.source, error.record_id) == (f"aws:{DEFAULT}/eu-central-1", "i-bad")
    assert "Placement" in str(error)
    # An AMI AWS no longer shows is still a fact row, marked not found.
    assert [(i["image_id"], i["found"]) for i in result.facts["images"]] == [("ami-0deregistered0000", False)]


def test_an_unreachable_endpoint_is_recorded_not_raised(estate):
    dead = f"http://127.0.0.1:{free_port()}"
    result = discover(
        AwsConfig(regions=["eu-west-1"], endpoint_url=dead, max_attempts=0),
        mapping=TagMapping(),
        discovered_at=AT,
    )
    assert [f["scope"] for f in result.failed_scopes] == ["aws:default/*"]
    assert "cannot reach the endpoint" in result.failed_scopes[0]["reason"]


# -------------------------------------------------------------------------------------------------
# Throttling, regions, configuration
# -------------------------------------------------------------------------------------------------


def test_throttling_is_retried_by_botocore_adaptive_mode(estate):
    assert client_config(AwsConfig()).retries == {"mode": "adaptive", "max_attempts": 10}
    rules = [throttle_first("DescribeInstances", 2), throttle_first("DescribeAutoScalingGroups", 1)]
    with _through(estate, *rules) as proxy:
        result = discover(
            AwsConfig(regions=["eu-west-1"], endpoint_url=proxy.url), mapping=TagMapping(), discovered_at=AT
        )
    assert result.failed_scopes == []
    assert len(result.vms) == 8 and len(result.snapshots) == len(
        estate["seeded"][(DEFAULT, "eu-west-1")].newest_snapshot
    )
    answered = {(action, status): n for (_, action, status), n in proxy.answered.items()}
    assert answered == {("DescribeInstances", "503"): 2, ("DescribeAutoScalingGroups", "400"): 1}
    assert proxy.forwarded[("eu-west-1", "DescribeInstances")] == 1


def test_without_enough_retries_throttling_fails_the_region(estate):
    # botocore's max_attempts counts retries after the first call: 0 means one call, no retry.
    with _through(estate, throttle_first("DescribeInstances", 1)) as proxy:
        result = discover(
            AwsConfig(regions=["eu-west-1"], endpoint_url=proxy.url, max_attempts=0),
            mapping=TagMapping(),
            discovered_at=AT,
        )
    assert [f["scope"] for f in result.failed_scopes] == [f"aws:{DEFAULT}/eu-west-1"]
    assert "RequestLimitExceeded" in result.failed_scopes[0]["reason"]


def test_every_enabled_region_when_none_are_configured(estate):
    regions_xml = (
        '<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId>'
        "<regionInfo>"
        + "".join(
            f"<item><regionName>{name}</regionName><regionEndpoint>ec2.{name}.amazonaws.com</regionEndpoint>"
            f"<optInStatus>{status}</optInStatus></item>"
            for name, status in [
                ("eu-west-1", "opt-in-not-required"),
                ("us-west-2", "opted-in"),
                ("me-south-1", "not-opted-in"),
            ]
        )
        + "</regionInfo></DescribeRegionsResponse>"
    )

    def regions(req: Request):
        return (200, regions_xml) if req.action == "DescribeRegions" else None

    messages: list[str] = []
    with _through(estate, regions) as proxy:
        result = discover(
            AwsConfig(regions=None, endpoint_url=proxy.url),
            mapping=TagMapping(),
            discovered_at=AT,
            progress=messages.append,
        )
    assert f"aws {DEFAULT}: 2 enabled regions" in messages
    assert {v["region"] for v in result.vms} == {"eu-west-1", "us-west-2"} and result.failed_scopes == []


def test_config_from_env():
    config = config_from_env(
        {
            "QLRF_AWS_ROLE_ARNS": f" {ROLE}, {DENIED_ROLE} ",
            "QLRF_AWS_REGIONS": "eu-west-1,us-west-2",
            "QLRF_AWS_MAX_WORKERS": "4",
            "QLRF_AWS_EXTERNAL_ID": "ext-123",
            "QLRF_AWS_INCLUDE_DEFAULT": "false",
        }
    )
    assert config.role_arns == [ROLE, DENIED_ROLE] and config.regions == REGIONS
    assert (config.max_workers, config.external_id, config.include_default) == (4, "ext-123", False)
    empty = config_from_env({})
    assert (
        empty.role_arns == [] and empty.regions is None and empty.include_default and empty.max_workers == 16
    )
    for bad in (
        {"QLRF_AWS_MAX_WORKERS": "zero"},
        {"QLRF_AWS_ROLE_ARNS": "not-an-arn"},
        {"QLRF_AWS_INCLUDE_DEFAULT": "maybe"},
        {"QLRF_AWS_SNAPSHOT_LISTING": "all"},
    ):
        with pytest.raises(ValueError):
            config_from_env(bad)


def test_resource_reads_the_environment_when_called_not_when_built(estate, monkeypatch):
    from resources.aws import AwsResource

    resource = AwsResource()
    monkeypatch.setenv("QLRF_AWS_REGIONS", "us-west-2")
    monkeypatch.setenv("QLRF_AWS_ROLE_ARNS", ROLE)
    assert resource.config().regions == ["us-west-2"]
    result = AwsResource(role_arns="", regions="eu-west-1").discover(AT, TagMapping())
    assert {(v["account"], v["region"]) for v in result.vms} == {(DEFAULT, "eu-west-1")}


def test_one_account_per_step_merges_to_the_serial_result(estate):
    """The discovery fan-out (qlrf/inventory/scopes.py) on live AWS: the default account and the role's
    account as two separately narrowed discoveries, merged in plan order, give the serial result."""
    from qlrf.inventory import scopes as plan
    from qlrf.inventory.columnar import Discovered
    from qlrf.tenancy import model as tenancy

    config = AwsConfig(regions=REGIONS, role_arns=[ROLE])
    batches = plan.batches(plan.live_scopes("aws", config), 1, source="live", discovered_at=AT)
    assert [[s.key for s in b.scopes] for b in batches] == [["default"], [ROLE]]
    parts = [(b.index, discover(plan.narrow("aws", config, b.scopes), mapping=TagMapping(), discovered_at=AT))
             for b in reversed(batches)]  # finished in any order
    orgs = tenancy.current()
    merged = plan.merge("aws", [(index, Discovered.of(found, orgs)) for index, found in parts])
    serial = Discovered.of(copy.deepcopy(estate["result"]), orgs)  # the estate fixture is shared: stamp a copy
    assert set(merged.vms["account"].to_pylist()) == {DEFAULT, SECOND}
    assert merged.vms.equals(serial.vms) and merged.snapshots.equals(serial.snapshots)
    assert (merged.facts, merged.failed_scopes, merged.errors) == (serial.facts, serial.failed_scopes, serial.errors)
