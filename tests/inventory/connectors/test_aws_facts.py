"""qlrf.inventory.connectors.aws.facts over AWS response shapes: no server needed for the row logic
(the listing calls themselves are covered against moto in test_aws_connector)."""

from __future__ import annotations

from datetime import UTC, datetime

from qlrf.inventory.connectors.aws.facts import (
    group_row,
    launch_spec,
    newest_snapshot_rows,
    resolve_ssm_images,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 1, tzinfo=UTC)
T2 = datetime(2026, 11, 2, tzinfo=UTC)


def test_newest_completed_snapshot_per_attached_volume():
    volumes = {"vol-1": "i-1", "vol-2": "i-2"}
    snaps = [
        {"SnapshotId": "snap-a", "VolumeId": "vol-1", "StartTime": T1, "State": "completed"},
        {"SnapshotId": "snap-b", "VolumeId": "vol-1", "StartTime": T2, "State": "completed"},
        {"SnapshotId": "snap-c", "VolumeId": "vol-2", "StartTime": T2, "State": "pending"},
        {"SnapshotId": "snap-d", "VolumeId": "vol-9", "StartTime": T2, "State": "completed"},
    ]
    rows = newest_snapshot_rows(snaps, volumes, "eu-west-1")
    assert [(r["asset_id"], r["snapshot_id"]) for r in rows] == [("i-1", "snap-b")]


def test_launch_spec_reads_template_mixed_policy_and_configuration():
    spec = {"LaunchTemplateName": "web", "Version": "$Latest"}
    assert launch_spec({"LaunchTemplate": spec}) == ("launch_template", spec, None)
    mixed = {"MixedInstancesPolicy": {"LaunchTemplate": {"LaunchTemplateSpecification": spec}}}
    assert launch_spec(mixed) == ("mixed_instances_policy", spec, None)
    assert launch_spec({"LaunchConfigurationName": "lc"}) == ("launch_configuration", None, "lc")
    assert launch_spec({}) == (None, None, None)


def _group(**launch: object) -> dict:
    return {
        "AutoScalingGroupName": "web",
        "DesiredCapacity": 2,
        "Instances": [{"InstanceId": "i-2"}, {"InstanceId": "i-1"}],
        **launch,
    }


def test_group_row_resolves_the_template_version_it_would_launch():
    templates = {
        ("LaunchTemplateName", "web"): {
            "2": {"VersionNumber": 2, "LaunchTemplateData": {"ImageId": "ami-2"}},
            "$Default": None,
        }
    }
    row = group_row(
        _group(LaunchTemplate={"LaunchTemplateName": "web", "Version": "2"}),
        templates,
        {},
        "111",
        "eu-west-1",
        NOW,
    )
    assert (row["would_launch_image"], row["launch_template_resolved_version"], row["resolve_error"]) == (
        "ami-2",
        2,
        None,
    )
    assert row["members"] == ["i-1", "i-2"] and row["member_count"] == 2 and row["platform"] == "aws"

    missing = group_row(
        _group(LaunchTemplate={"LaunchTemplateName": "web"}), templates, {}, "111", "eu-west-1", NOW
    )
    assert missing["would_launch_image"] is None
    assert missing["resolve_error"] == "launch template web has no version $Default"


def test_group_row_names_a_missing_launch_configuration():
    row = group_row(_group(LaunchConfigurationName="gone"), {}, {}, "111", "eu-west-1", NOW)
    assert row["resolve_error"] == "launch configuration gone not found"
    found = group_row(_group(LaunchConfigurationName="lc"), {}, {"lc": {"ImageId": "ami-9"}}, "111", "r", NOW)
    assert found["would_launch_image"] == "ami-9" and found["launch_source"] == "launch_configuration"


class _Ssm:
    """A stand-in for the SSM client: answers GetParameters from a dict, like the real API shape."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def get_parameters(self, Names: list[str]) -> dict:  # noqa: N803 - botocore's argument name
        return {"Parameters": [{"Name": n, "Value": self.values[n]} for n in Names if n in self.values]}


def test_resolve_ssm_images_replaces_known_parameters_and_names_missing_ones():
    rows = [
        {"would_launch_image": "resolve:ssm:/golden/web", "resolve_error": None},
        {"would_launch_image": "resolve:ssm:/golden/gone", "resolve_error": None},
        {"would_launch_image": "ami-1", "resolve_error": None},
    ]
    resolve_ssm_images(lambda: _Ssm({"/golden/web": "ami-7"}), rows)
    assert rows[0] == {"would_launch_image": "ami-7", "resolve_error": None}
    assert rows[1]["resolve_error"] == "SSM parameter /golden/gone not found"
    assert rows[2] == {"would_launch_image": "ami-1", "resolve_error": None}
