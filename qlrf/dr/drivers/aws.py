"""AWS drill driver (boto3): restore an EC2 instance from its newest EBS snapshot in the DR region.

- ``locate``: the instance's root volume (DescribeInstances), then its newest ``completed`` snapshot
  (DescribeSnapshots, filter ``volume-id``). None: the drill fails at ``locate``.
- ``copy``: ``CopySnapshot`` into the DR region (``SourceRegion`` = the VM's), tagged at creation;
  ready when the copy is ``completed`` (``error``: failed).
- ``provision``: ``RegisterImage`` from the copy (root device = the source's), named
  ``qlrf-drill-<drill>-<vm>`` (RegisterImage takes no tags everywhere, so the name is how a sweep finds
  an image whose tagging was cut short), then ``CreateTags``.
- ``launch``: ``RunInstances`` from that image with the source's type (or the plan's), tags on the
  instance and its volumes. An ``InstanceLimitExceeded``/``InsufficientInstanceCapacity`` answer is
  the DR region's quota: the VM fails at ``launch`` naming it.
- ``verify``: ``running`` and instance + system status ``ok`` (DescribeInstanceStatus);
  ``stopped``/``terminated``/``shutting-down`` will never get better: failed.
- ``leftovers``: instances, images and snapshots in the DR region tagged ``qlrf:drill`` (images also by
  name prefix); ``remove``: terminate (and wait), deregister, delete snapshot, delete volume.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from qlrf.dr.drivers import (
    NAME_PREFIX,
    TAG_DRILL,
    TAG_VM,
    ClientCache,
    DrillContext,
    DrillStepError,
    Resource,
    RestorePoint,
    VmRun,
)
from qlrf.dr.plans import Target
from qlrf.envparse import environ

QUOTA_CODES = ("InstanceLimitExceeded", "InsufficientInstanceCapacity", "VcpuLimitExceeded", "MaxSpotInstanceCountExceeded")
_DEAD = ("stopped", "stopping", "terminated", "shutting-down")


@dataclass
class AwsDrillConfig:
    endpoint_url: str | None = None  # tests; boto3 also honours AWS_ENDPOINT_URL
    profile: str | None = None
    max_attempts: int = 5
    terminate_wait_seconds: float = 120.0


def config_from_env(env: Mapping[str, str] | None = None) -> AwsDrillConfig:
    """AWS_ENDPOINT_URL and AWS_PROFILE (boto3's own); read when called, never at import."""
    env = environ(env)
    return AwsDrillConfig(endpoint_url=env.get("AWS_ENDPOINT_URL") or None, profile=env.get("AWS_PROFILE") or None)


def _tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _tags(item: Mapping[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in item.get("Tags") or ()}


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) if hasattr(exc, "response") else ""


class AwsDrillDriver:
    platform = "aws"

    def __init__(self, config: AwsDrillConfig | None = None):
        self.config = config or AwsDrillConfig()
        self._clients = ClientCache(self._make_client)
        self._session = None

    def _make_client(self, region: str) -> Any:
        import boto3
        from botocore.config import Config

        if self._session is None:
            self._session = boto3.Session(profile_name=self.config.profile) if self.config.profile else boto3.Session()
        cfg = Config(retries={"max_attempts": self.config.max_attempts, "mode": "standard"})
        return self._session.client("ec2", region_name=region, endpoint_url=self.config.endpoint_url, config=cfg)

    def ec2(self, region: str) -> Any:
        return self._clients.get(region)

    def close(self) -> None:
        self._clients.clear()

    # -- locate -----------------------------------------------------------------------------------
    def locate(self, ctx: DrillContext, run: VmRun) -> RestorePoint:
        vm = run.vm
        ec2 = self.ec2(vm.region)
        reservations = ec2.describe_instances(InstanceIds=[vm.asset_id])["Reservations"]
        instances = [i for r in reservations for i in r["Instances"]]
        if not instances:
            raise DrillStepError(f"instance {vm.asset_id} not found in {vm.region}")
        inst = instances[0]
        root = inst.get("RootDeviceName") or "/dev/sda1"
        volumes = {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in inst.get("BlockDeviceMappings") or () if "Ebs" in m}
        volume = volumes.get(root) or next(iter(volumes.values()), None)
        if volume is None:
            raise DrillStepError(f"instance {vm.asset_id} has no EBS root volume to restore")
        snaps = ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [volume]},
                                                {"Name": "status", "Values": ["completed"]}], OwnerIds=["self"])["Snapshots"]
        if not snaps:
            raise DrillStepError(f"no restore point: volume {volume} of {vm.asset_id} has no completed snapshot")
        newest = max(snaps, key=lambda s: (s["StartTime"], s["SnapshotId"]))
        run.state.update(root_device=root, instance_type=inst.get("InstanceType"), architecture=inst.get("Architecture"))
        return RestorePoint(newest["SnapshotId"], newest["StartTime"].astimezone(UTC), "snapshot",
                            {"volume_id": volume, "region": vm.region})

    # -- phases -----------------------------------------------------------------------------------
    def start(self, step: str, ctx: DrillContext, run: VmRun) -> bool:
        vm, target = run.vm, ctx.target
        dr = self.ec2(target.region)
        tags = ctx.tags(vm)
        if step == "copy":
            out = dr.copy_snapshot(SourceRegion=vm.region, SourceSnapshotId=run.restore_point.id,
                                   Description=f"qlrf drill {ctx.drill_id} of {vm.asset_id}",
                                   TagSpecifications=[{"ResourceType": "snapshot", "Tags": _tag_list(tags)}])
            run.state["copy"] = out["SnapshotId"]
            run.resources.append(Resource("snapshot", out["SnapshotId"], target.region, vm.asset_id, ctx.drill_id))
            return True
        if step == "provision":
            name = ctx.resource_name(vm)
            image = dr.register_image(
                Name=name, Description=f"qlrf drill {ctx.drill_id} restore of {vm.asset_id}",
                RootDeviceName=run.state["root_device"], VirtualizationType="hvm",
                Architecture=run.state.get("architecture") or "x86_64",
                BlockDeviceMappings=[{"DeviceName": run.state["root_device"],
                                      "Ebs": {"SnapshotId": run.state["copy"], "DeleteOnTermination": True}}],
            )["ImageId"]
            run.state["image"] = image
            run.resources.append(Resource("image", image, target.region, vm.asset_id, ctx.drill_id))
            dr.create_tags(Resources=[image], Tags=_tag_list(tags))
            return True
        if step == "launch":
            kwargs: dict[str, Any] = {
                "ImageId": run.state["image"], "MinCount": 1, "MaxCount": 1,
                "InstanceType": target.instance_type or vm.instance_type or run.state.get("instance_type") or "t3.micro",
                "TagSpecifications": [{"ResourceType": "instance", "Tags": _tag_list({**tags, "Name": ctx.resource_name(vm)})},
                                      {"ResourceType": "volume", "Tags": _tag_list(tags)}],
            }
            if target.subnet_id:
                kwargs["SubnetId"] = target.subnet_id
            elif target.zone:
                kwargs["Placement"] = {"AvailabilityZone": target.zone}
            try:
                out = dr.run_instances(**kwargs)
            except Exception as exc:
                code = _error_code(exc)
                if code in QUOTA_CODES:
                    raise DrillStepError(f"no capacity in {target.region} ({code}): {exc}") from exc
                raise
            instance = out["Instances"][0]["InstanceId"]
            run.state["instance"] = instance
            run.resources.append(Resource("instance", instance, target.region, vm.asset_id, ctx.drill_id))
            return True
        return step == "verify"

    def ready(self, step: str, ctx: DrillContext, run: VmRun) -> bool:
        dr = self.ec2(ctx.target.region)
        if step == "copy":
            snap = dr.describe_snapshots(SnapshotIds=[run.state["copy"]])["Snapshots"][0]
            if snap["State"] == "error":
                raise DrillStepError(f"snapshot copy {run.state['copy']} failed: {snap.get('StateMessage', 'error')}")
            return snap["State"] == "completed"
        if step == "provision":
            image = dr.describe_images(ImageIds=[run.state["image"]])["Images"]
            if image and image[0]["State"] in ("failed", "error", "deregistered"):
                raise DrillStepError(f"image {run.state['image']} is {image[0]['State']}")
            return bool(image) and image[0]["State"] == "available"
        if step == "verify":
            return self._healthy(dr, run) is None
        return True

    def _healthy(self, dr: Any, run: VmRun) -> str | None:
        instance = run.state["instance"]
        status = dr.describe_instance_status(InstanceIds=[instance], IncludeAllInstances=True)["InstanceStatuses"]
        if not status:
            return f"instance {instance} not found"
        s = status[0]
        state = s["InstanceState"]["Name"]
        if state in _DEAD:
            raise DrillStepError(f"restored instance {instance} is {state}, it will not become healthy")
        if state != "running":
            return f"instance {instance} is {state}"
        checks = (s.get("InstanceStatus", {}).get("Status"), s.get("SystemStatus", {}).get("Status"))
        if checks != ("ok", "ok"):
            return f"instance {instance} status checks {checks[0]}/{checks[1]}"
        return None

    def check(self, name: str, ctx: DrillContext, run: VmRun) -> str | None:
        dr = self.ec2(ctx.target.region)
        instance = run.state.get("instance")
        if instance is None:
            return "no restored instance"
        if name == "running":
            inst = dr.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
            return None if inst["State"]["Name"] == "running" else f"instance {instance} is {inst['State']['Name']}"
        if name == "status_checks":
            try:
                return self._healthy(dr, run)
            except DrillStepError as exc:
                return str(exc)
        if name == "tagged":
            inst = dr.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
            return None if _tags(inst).get(TAG_DRILL) == ctx.drill_id else f"instance {instance} lacks {TAG_DRILL}={ctx.drill_id}"
        raise ValueError(f"unknown check {name!r}")

    def would_create(self, ctx: DrillContext, run: VmRun) -> list[str]:
        vm, target = run.vm, ctx.target
        rp = run.restore_point
        itype = target.instance_type or vm.instance_type or run.state.get("instance_type")
        return [f"snapshot: copy of {rp.id} ({vm.region}) in {target.region}, tagged {TAG_DRILL}={ctx.drill_id}",
                f"image: {ctx.resource_name(vm)} registered from that copy in {target.region}",
                f"instance: {itype} from that image in {target.region}"
                + (f" subnet {target.subnet_id}" if target.subnet_id else (f" zone {target.zone}" if target.zone else "")),
                "volume: the instance's root volume (deleted with it)"]

    # -- cleanup ----------------------------------------------------------------------------------
    def leftovers(self, target: Target, keep_drill: str | None = None) -> list[Resource]:
        dr = self.ec2(target.region)
        found: list[Resource] = []
        flt = [{"Name": "tag-key", "Values": [TAG_DRILL]}]
        pages = dr.get_paginator("describe_instances").paginate(Filters=flt)
        for page in pages:
            for r in page["Reservations"]:
                for inst in r["Instances"]:
                    if inst["State"]["Name"] != "terminated":
                        found.append(self._resource("instance", inst["InstanceId"], target.region, _tags(inst)))
        images = {i["ImageId"]: i for i in dr.describe_images(Owners=["self"], Filters=flt)["Images"]}
        images.update({i["ImageId"]: i for i in dr.describe_images(
            Owners=["self"], Filters=[{"Name": "name", "Values": [f"{NAME_PREFIX}*"]}])["Images"]})
        found += [self._resource("image", i["ImageId"], target.region, _tags(i), i.get("Name")) for i in images.values()]
        for s in dr.describe_snapshots(OwnerIds=["self"], Filters=flt)["Snapshots"]:
            found.append(self._resource("snapshot", s["SnapshotId"], target.region, _tags(s)))
        for v in dr.describe_volumes(Filters=flt)["Volumes"]:
            if not v.get("Attachments"):
                found.append(self._resource("volume", v["VolumeId"], target.region, _tags(v)))
        return [r for r in found if keep_drill is None or r.drill_id != keep_drill]

    @staticmethod
    def _resource(kind: str, rid: str, region: str, tags: Mapping[str, str], name: str | None = None) -> Resource:
        drill = tags.get(TAG_DRILL)
        if drill is None and name and name.startswith(NAME_PREFIX):
            drill = "?"  # named by a drill whose tagging was cut short
        return Resource(kind, rid, region, tags.get(TAG_VM), drill, dict(tags))

    def remove(self, resources: list[Resource]) -> list[dict[str, Any]]:
        """Instances first (and wait until terminated), then images, snapshots, volumes; every one
        attempted, each reported removed or with the error."""
        order = {"instance": 0, "image": 1, "snapshot": 2, "volume": 3}
        done: list[dict[str, Any]] = []
        items = sorted(resources, key=lambda r: order.get(r.kind, 9))
        terminated: dict[str, list[str]] = {}
        for r in items:
            dr = self.ec2(r.region)
            entry = r.as_dict()
            try:
                if r.kind == "instance":
                    dr.terminate_instances(InstanceIds=[r.id])
                    terminated.setdefault(r.region, []).append(r.id)
                elif r.kind == "image":
                    self._wait_terminated(terminated)
                    dr.deregister_image(ImageId=r.id)
                elif r.kind == "snapshot":
                    dr.delete_snapshot(SnapshotId=r.id)
                elif r.kind == "volume":
                    dr.delete_volume(VolumeId=r.id)
                entry["removed"] = True
            except Exception as exc:  # noqa: BLE001 - try every resource, report each
                code = _error_code(exc)
                gone = code.endswith(".NotFound") or code in ("InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound")
                entry["removed"] = gone
                entry["error"] = None if gone else f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            done.append(entry)
        self._wait_terminated(terminated)
        return done

    def _wait_terminated(self, terminated: dict[str, list[str]]) -> None:
        import time

        for region, ids in list(terminated.items()):
            dr = self.ec2(region)
            deadline = time.monotonic() + self.config.terminate_wait_seconds
            while ids and time.monotonic() < deadline:
                states = [i["State"]["Name"] for r in dr.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
                if all(s == "terminated" for s in states):
                    break
                time.sleep(0.5)
            terminated.pop(region)


__all__ = ["AwsDrillConfig", "AwsDrillDriver", "config_from_env"]
