"""AWS listings that become fact rows and snapshot rows: the AMIs instances run or groups would launch,
Auto Scaling groups with their launch templates / configurations resolved to an image, and the newest
completed EBS snapshot of each attached volume.

Every function takes ready botocore clients and, where independent calls can overlap, a `fan`
(`common.fan_map` bound to the leaf pool); none of them creates a session or reads configuration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from qlrf.inventory.connectors.aws.sessions import explain
from qlrf.inventory.connectors.common import image_fact_row, scaling_group_row
from qlrf.inventory.normalize.aws import snapshot_row
from qlrf.inventory.normalize.common import parse_time

Fan = Callable[[Callable[[Any], Any], Sequence[Any]], list[Any]]

PAGE_SIZE_SNAPSHOTS = 1000  # DescribeSnapshots maximum
PAGE_SIZE_GROUPS = 100  # DescribeAutoScalingGroups maximum
FILTER_CHUNK = 200  # values per EC2 filter
LAUNCH_CONFIG_CHUNK = 50  # DescribeLaunchConfigurations names per call
SSM_CHUNK = 10  # GetParameters names per call
SSM_PREFIX = "resolve:ssm:"


def chunks(values: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


# --------------------------------------------------------------------------------------------------
# AMIs
# --------------------------------------------------------------------------------------------------


def image_fact(image: dict | None, image_id: str, account: str, region: str, discovered_at: datetime) -> dict:
    """One referenced AMI as seen from `account` in `region`; found=False if AWS no longer shows it
    (deregistered, or a private image no longer shared with the account)."""
    image = image or {}
    return image_fact_row(
        platform="aws",
        image_type="ami",
        image_id=image_id,
        account=account,
        region=region,
        found=bool(image),
        name=image.get("Name"),
        description=image.get("Description"),
        owner_id=image.get("OwnerId"),
        owner_alias=image.get("ImageOwnerAlias"),
        created_at=parse_time(image.get("CreationDate"), "CreationDate"),
        deprecated_at=parse_time(image.get("DeprecationTime"), "DeprecationTime"),
        state=image.get("State"),
        public=image.get("Public"),
        tags={str(t["Key"]): str(t.get("Value", "")) for t in image.get("Tags") or []},
        discovered_at=discovered_at,
    )


def image_facts(
    ec2: Any, fan: Fan, image_ids: Iterable[str], account: str, region: str, discovered_at: datetime
) -> list[dict]:
    """One fact per AMI id, 200 ids per DescribeImages call."""
    wanted = sorted(i for i in image_ids if i.startswith("ami-"))

    def fetch(chunk: list[str]) -> list[dict]:
        # A filter (not ImageIds) so one deregistered AMI does not fail the whole call with
        # InvalidAMIID.NotFound; deprecated and disabled images must be asked for explicitly.
        return ec2.describe_images(
            Filters=[{"Name": "image-id", "Values": chunk}], IncludeDeprecated=True, IncludeDisabled=True
        ).get("Images", [])

    found = {img["ImageId"]: img for batch in fan(fetch, chunks(wanted, FILTER_CHUNK)) for img in batch}
    return [image_fact(found.get(i), i, account, region, discovered_at) for i in wanted]


# --------------------------------------------------------------------------------------------------
# Snapshots
# --------------------------------------------------------------------------------------------------


def _paged_snapshots(ec2: Any, filters: list[dict]) -> list[dict]:
    snaps: list[dict] = []
    pages = ec2.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=filters, PaginationConfig={"PageSize": PAGE_SIZE_SNAPSHOTS}
    )
    for page in pages:
        snaps.extend(page.get("Snapshots") or [])
    return snaps


def owned_snapshots(ec2: Any, account_id: str) -> list[dict]:
    """Every completed snapshot the account owns, 1000 per page (what Cloud Custodian's ebs-snapshot
    lists too). No dependency on the instance listing, so it runs alongside it."""
    # The owner-id filter says the same as OwnerIds=self to AWS; moto ignores OwnerIds and would
    # otherwise also return the Amazon-owned snapshots behind its public AMIs.
    return _paged_snapshots(
        ec2,
        [{"Name": "owner-id", "Values": [account_id]}, {"Name": "status", "Values": ["completed"]}],
    )


def volume_snapshots(ec2: Any, volume_ids: list[str]) -> list[dict]:
    """Only the snapshots of the given volumes (one chunk of up to 200 ids): fewer bytes than listing
    everything when the account keeps many snapshots of deleted volumes or of AMIs."""
    return _paged_snapshots(
        ec2,
        [{"Name": "volume-id", "Values": volume_ids}, {"Name": "status", "Values": ["completed"]}],
    )


def newest_snapshot_rows(snapshots: Iterable[dict], volumes: dict[str, str], region: str) -> list[dict]:
    """The newest completed snapshot of each attached volume, as contract rows."""
    newest: dict[str, dict] = {}
    for snap in snapshots:
        volume = snap.get("VolumeId")
        if (
            volume not in volumes
            or snap.get("State", "completed") != "completed"
            or not snap.get("StartTime")
        ):
            continue
        best = newest.get(volume)
        if best is None or (snap["StartTime"], snap["SnapshotId"]) > (best["StartTime"], best["SnapshotId"]):
            newest[volume] = snap
    rows = []
    for volume in sorted(newest):
        row = snapshot_row(newest[volume], volumes, region)
        if row is not None:
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# Auto Scaling groups
# --------------------------------------------------------------------------------------------------


def launch_spec(group: dict) -> tuple[str | None, dict | None, str | None]:
    """(source, launch template spec, launch configuration name) of an Auto Scaling group."""
    if group.get("LaunchTemplate"):
        return "launch_template", group["LaunchTemplate"], None
    mixed = ((group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}).get(
        "LaunchTemplateSpecification"
    )
    if mixed:
        return "mixed_instances_policy", mixed, None
    if group.get("LaunchConfigurationName"):
        return "launch_configuration", None, group["LaunchConfigurationName"]
    return None, None, None


def _template_key(spec: dict) -> tuple[str, str]:
    if spec.get("LaunchTemplateId"):
        return "LaunchTemplateId", spec["LaunchTemplateId"]
    return "LaunchTemplateName", spec.get("LaunchTemplateName") or ""


def _spec_version(spec: dict) -> str:
    return str(spec.get("Version") or "$Default")


def _list_groups(autoscaling: Any) -> list[dict]:
    groups: list[dict] = []
    pages = autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
        PaginationConfig={"PageSize": PAGE_SIZE_GROUPS}
    )
    for page in pages:
        groups.extend(page.get("AutoScalingGroups") or [])
    return groups


def _pick_version(items: list[dict], version: str) -> dict | None:
    if version == "$Default":
        return next((v for v in items if v.get("DefaultVersion")), None)
    if version == "$Latest":
        return max(items, key=lambda v: v.get("VersionNumber", 0), default=None)
    return next((v for v in items if str(v.get("VersionNumber")) == version), None)


def _launch_templates(ec2: Any, fan: Fan, groups: list[dict]) -> dict[tuple[str, str], dict[str, Any]]:
    """One DescribeLaunchTemplateVersions per template, all requested versions at once:
    {template key: {version: template version or None} | {"error": reason}}."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for group in groups:
        _, spec, _ = launch_spec(group)
        if spec:
            wanted.setdefault(_template_key(spec), set()).add(_spec_version(spec))

    def versions(item: tuple[tuple[str, str], set[str]]) -> tuple[tuple[str, str], dict[str, Any]]:
        (kind, value), requested = item
        try:
            resp = ec2.describe_launch_template_versions(**{kind: value}, Versions=sorted(requested))
        except ClientError as exc:
            return (kind, value), {"error": explain(exc, f"launch template {value}")}
        items = resp.get("LaunchTemplateVersions") or []
        return (kind, value), {version: _pick_version(items, version) for version in requested}

    return dict(fan(versions, list(wanted.items())))


def _launch_configurations(autoscaling: Any, groups: list[dict]) -> dict[str, dict]:
    names = sorted({name for group in groups if (name := launch_spec(group)[2])})
    configs: dict[str, dict] = {}
    for chunk in chunks(names, LAUNCH_CONFIG_CHUNK):
        resp = autoscaling.describe_launch_configurations(LaunchConfigurationNames=list(chunk))
        for lc in resp.get("LaunchConfigurations") or []:
            configs[lc["LaunchConfigurationName"]] = lc
    return configs


def _would_launch(
    group: dict, templates: dict[tuple[str, str], dict[str, Any]], configs: dict[str, dict]
) -> tuple[str | None, int | None, str | None]:
    """(image, resolved template version, error) of what the group would launch now."""
    _, spec, config_name = launch_spec(group)
    if spec:
        entry = templates.get(_template_key(spec)) or {}
        version = _spec_version(spec)
        if "error" in entry:
            return None, None, entry["error"]
        if entry.get(version) is None:
            name = spec.get("LaunchTemplateName") or spec.get("LaunchTemplateId")
            return None, None, f"launch template {name} has no version {version}"
        match = entry[version]
        return (match.get("LaunchTemplateData") or {}).get("ImageId"), match.get("VersionNumber"), None
    if config_name:
        lc = configs.get(config_name)
        if lc is None:
            return None, None, f"launch configuration {config_name} not found"
        return lc.get("ImageId"), None, None
    return None, None, None


def group_row(
    group: dict,
    templates: dict[tuple[str, str], dict[str, Any]],
    configs: dict[str, dict],
    account: str,
    region: str,
    discovered_at: datetime,
) -> dict:
    """One Auto Scaling group as a scaling_groups fact row."""
    source, spec, config_name = launch_spec(group)
    image, resolved_version, error = _would_launch(group, templates, configs)
    return scaling_group_row(
        platform="aws",
        account=account,
        region=region,
        group_name=group.get("AutoScalingGroupName"),
        group_arn=group.get("AutoScalingGroupARN"),
        desired_capacity=group.get("DesiredCapacity"),
        min_size=group.get("MinSize"),
        max_size=group.get("MaxSize"),
        members=(str(i["InstanceId"]) for i in group.get("Instances") or []),
        launch_source=source,
        launch_template_id=(spec or {}).get("LaunchTemplateId"),
        launch_template_name=(spec or {}).get("LaunchTemplateName"),
        launch_template_version=_spec_version(spec) if spec else None,
        launch_template_resolved_version=resolved_version,
        launch_configuration=config_name,
        would_launch_image=image,
        members_on_other_image=None,  # set once the region's instances are read
        resolve_error=error,
        discovered_at=discovered_at,
    )


def scaling_groups(
    autoscaling: Any,
    ec2: Any,
    ssm: Callable[[], Any],
    fan: Fan,
    account: str,
    region: str,
    discovered_at: datetime,
    scrub: Callable[[str], str] = str,
) -> list[dict]:
    """Every Auto Scaling group of the region with the image it would launch now (`ssm` makes an SSM
    client, only if a template says resolve:ssm:; `scrub` keeps credentials out of its reasons)."""
    groups = _list_groups(autoscaling)
    if not groups:
        return []
    templates = _launch_templates(ec2, fan, groups)
    configs = _launch_configurations(autoscaling, groups)
    rows = [group_row(g, templates, configs, account, region, discovered_at) for g in groups]
    resolve_ssm_images(ssm, rows, scrub)
    return rows


def resolve_ssm_images(ssm: Callable[[], Any], rows: list[dict], scrub: Callable[[str], str] = str) -> None:
    """Launch templates may say `resolve:ssm:<parameter>`; the AMI is that parameter's value now."""
    refs = sorted(
        {r["would_launch_image"] for r in rows if (r["would_launch_image"] or "").startswith(SSM_PREFIX)}
    )
    if not refs:
        return
    values: dict[str, str] = {}
    try:
        client = ssm()
        names = [ref.removeprefix(SSM_PREFIX) for ref in refs]
        for chunk in chunks(names, SSM_CHUNK):
            for param in client.get_parameters(Names=list(chunk)).get("Parameters") or []:
                values[SSM_PREFIX + param["Name"]] = param["Value"]
    except (BotoCoreError, ClientError) as exc:
        reason = scrub(explain(exc, "SSM parameter"))
        for row in rows:
            if row["would_launch_image"] in refs:
                row["resolve_error"] = reason
        return
    for row in rows:
        ref = row["would_launch_image"]
        if ref in refs:
            if ref in values:
                row["would_launch_image"] = values[ref]
            else:
                row["resolve_error"] = f"SSM parameter {ref.removeprefix(SSM_PREFIX)} not found"
