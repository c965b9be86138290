"""Shared pieces of the drill tests: a seeded AWS source region on moto, its inventory, drill plans.

The loopback clouds stamp snapshots with the real clock, so drills against them run on the real
clock too (RPO = drill start - snapshot time must be a real difference); the pure tests use fixed dates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from qlrf.dr.plans import DrillPlan, parse_drill_plan
from qlrf.inventory.contract import inventory_table
from qlrf.warehouse import Warehouse

SOURCE, DR = "ap-southeast-2", "us-west-2"


@dataclass
class AwsEstate:
    instances: list[str]
    snapshots: dict[str, str]  # instance -> newest snapshot
    volumes: dict[str, str]


def seed_aws(session: Any, endpoint: str, n: int, *, without_snapshot: int = 0, group: str = "web",
             older: bool = False) -> AwsEstate:
    """``n`` tagged instances in SOURCE, each with a root-volume snapshot (and an older one before it
    when ``older``), except the last ``without_snapshot`` ones (no restore point at all)."""
    ec2 = session.client("ec2", region_name=SOURCE, endpoint_url=endpoint)
    image = ec2.register_image(Name="base-image", RootDeviceName="/dev/sda1", VirtualizationType="hvm",
                               BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8}}])["ImageId"]
    out = ec2.run_instances(ImageId=image, MinCount=n, MaxCount=n, InstanceType="t3.small", TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "site", "Value": "syd1"}, {"Key": "tier", "Value": group}]}])
    ids = sorted(i["InstanceId"] for i in out["Instances"])
    volumes, snapshots = {}, {}
    for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
        for inst in r["Instances"]:
            volumes[inst["InstanceId"]] = inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    protected = ids[: n - without_snapshot]
    for iid in protected if older else ():
        ec2.create_snapshot(VolumeId=volumes[iid], Description="older")
    if older:
        time.sleep(1.01)  # moto stamps snapshots to the second: the newest must be later, not a tie
    for iid in protected:
        snapshots[iid] = ec2.create_snapshot(VolumeId=volumes[iid], Description="newest")["SnapshotId"]
    return AwsEstate(ids, snapshots, volumes)


def write_inventory(wh: Warehouse, platform: str, rows: list[dict], day: datetime | None = None) -> str:
    day = day or datetime.now(UTC)
    full = [{"platform": platform, "account": "123456789012", "state": "running", "discovered_at": day, **r} for r in rows]
    wh.write("inventory", inventory_table(full), day.date(), platform)
    return day.date().isoformat()


def aws_inventory(estate: AwsEstate, group: str = "web") -> list[dict]:
    return [{"asset_id": i, "region": SOURCE, "name": f"web-{n}", "instance_type": "t3.small", "site": "syd1",
             "environment": "staging", "group": group} for n, i in enumerate(estate.instances)]


def drill_plan(platform: str = "aws", *, target: str = DR, environment: str = "staging", autonomy: str = "full_auto",
               scope: dict | None = None, cleanup: str = "always", timeouts: dict | None = None,
               rto: int = 3600, rpo: int = 86400, risk: str = "medium", **spec: Any) -> DrillPlan:
    steps = {"locate": 60, "copy": 60, "provision": 60, "launch": 60, "verify": 60, **(timeouts or {})}
    doc = {
        "apiVersion": "qlrf/v1", "kind": "DrillPlan",
        "metadata": {"id": f"{platform}-drill", "created_at": "2026-11-30T00:00:00Z", "created_by": "dr@example.com",
                     "reason": "test drill", "environment": environment, "platform": platform, "site": "syd1",
                     "risk_level": risk, "autonomy_mode": autonomy},
        "spec": {"scope": scope or {"site": "syd1"}, "target": {"region": target},
                 "steps": [{"name": k, "timeout_seconds": v} for k, v in steps.items()], "cleanup": cleanup,
                 "objectives": {"rto_seconds": rto, "rpo_seconds": rpo}, **spec},
    }
    return parse_drill_plan(yaml.safe_dump(doc), "test plan").sealed()


def tagged_in(session: Any, endpoint: str, region: str) -> dict[str, list[str]]:
    """Every live resource tagged qlrf:drill (or named qlrf-drill-*) in ``region``."""
    ec2 = session.client("ec2", region_name=region, endpoint_url=endpoint)
    flt = [{"Name": "tag-key", "Values": ["qlrf:drill"]}]
    instances = [i["InstanceId"] for r in ec2.describe_instances(Filters=flt)["Reservations"] for i in r["Instances"]
                 if i["State"]["Name"] != "terminated"]
    images = [i["ImageId"] for i in ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["qlrf-drill-*"]}])["Images"]]
    snaps = [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"], Filters=flt)["Snapshots"]]
    return {"instances": instances, "images": images, "snapshots": snaps}


def source_state(session: Any, endpoint: str) -> dict:
    """What a drill must never touch: the source region's instances (and states) and snapshots."""
    ec2 = session.client("ec2", region_name=SOURCE, endpoint_url=endpoint)
    inst = {i["InstanceId"]: i["State"]["Name"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}
    snaps = sorted(s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"])
    return {"instances": inst, "snapshots": snaps}


def killed_drill_main(argv: list[str]) -> None:
    """Child process of the killed-run test: run a drill and SIGKILL itself once ``launch`` is done
    (instances, images and snapshot copies exist; no cleanup, no journal can run). The runner is
    used directly (the gate's decision is not what this test is about, and compiling it costs seconds)."""
    import os
    import signal

    from qlrf.dr.drivers.aws import AwsDrillConfig, AwsDrillDriver
    from qlrf.dr.plans import load_drill_plan
    from qlrf.dr.runner import DrillRunner
    from qlrf.dr.scope import inventory_rows, resolve_scope
    from qlrf.remediation.audit import AuditLog

    endpoint, warehouse, audit_url, plan_file = argv

    def die_after_launch(step: str, _active: int) -> None:
        if step == "launch":
            print("launched", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    plan, wh = load_drill_plan(plan_file), Warehouse(warehouse)
    _, rows = inventory_rows(wh, "aws", datetime.now(UTC).date())
    runner = DrillRunner(AwsDrillDriver(AwsDrillConfig(endpoint_url=endpoint)), audit=AuditLog(audit_url), warehouse=wh,
                         actor="cli:child", poll_interval=0.05)
    runner.run(plan, resolve_scope(plan, rows), on_step=die_after_launch)
