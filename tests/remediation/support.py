"""Shared pieces of the remediation tests and bench/bench_remediation.py: plans, an audit log, a
12-instance ASG on moto."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from qlrf.remediation.plans import PatchPlan

HASH_LEN = 71
NOW = datetime(2026, 11, 28, 23, 0, tzinfo=UTC)  # a Saturday, inside the test window below


class Clock:
    """A settable clock for ``TaskStore(clock=...)``: in tests time moves only when the test moves it."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> Clock:
        self.at = at
        return self


def sqlite_task_store(tmp_path: Any, clock: Clock) -> Any:
    """A TaskStore and its audit log on one temp SQLite file, on the test's clock."""
    from qlrf.remediation.approvals import TaskStore

    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    return TaskStore(url, audit=audit_log(url), clock=clock)


def audit_log(url: str) -> Any:
    """The project's hash-chained AuditLog on ``url`` (a temp SQLite file in tests)."""
    from qlrf.remediation.audit import AuditLog

    return AuditLog(url)


def dry_run_first(plan: PatchPlan, driver: Any, tmp_path: Any) -> tuple[Any, Any]:
    """Dry-run `plan` with `driver` (its recorder switched to dry run) under the real gate: (result, audit)."""
    from qlrf.remediation.calls import CallRecorder
    from qlrf.remediation.dryrun import dry_run_plan
    from qlrf.remediation.gate import Gate

    driver.recorder = CallRecorder(dry_run=True)
    audit = audit_log(f"sqlite:///{tmp_path / 'dry-run-audit.db'}")
    result = dry_run_plan(plan, driver=driver, gate=Gate.embedded(), audit=audit, requested_by="cli:alice",
                          fleet_size=100, now=NOW, log=lambda _: None)
    assert result.error is None and result.would_run and kinds(audit) == ["dry_run"], result.lines()
    return result, audit


def sent(driver: Any, *, params: bool = True) -> list[tuple]:
    """The mutating calls a driver recorded, comparable between a dry run and a real run (without
    `params` where a dry run can only name what a real call creates, e.g. a new version number)."""
    return [(c.name, c.target, dict(c.params) if params else None) for c in driver.recorder.calls]


def writes(requests: Any, read_only_posts: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The requests to a loopback fake that could change something (GCE lists with some POSTs)."""
    return [(r.method, r.path) for r in requests if r.method != "GET" and not r.path.endswith(read_only_posts)]


def records_of(audit: Any, kind: str | None = None) -> list[Any]:
    return audit.records(kind=kind)


def kinds(audit: Any) -> list[str]:
    return [r.kind for r in audit.records()]


def trail(audit: Any) -> list[str]:
    """One line per audit record: seq, kind, actor and the facts that matter for a reader."""
    lines = []
    for r in audit.records():
        d = r.data
        if r.kind == "policy_decision":
            dec = d["decision"]
            why = "; ".join(dec["deny"] or dec["approval_reasons"]) or "-"
            text = f"{d['action']} wave {d['wave']}: allow={dec['allow']} ({why})"
        elif r.kind == "health_gate":
            text = (f"wave {d['wave']}: healthy={d['healthy']} {d['healthy_count']}/{d['total']} after "
                    f"{d['polls']} look(s), {d['waited_seconds']}s; unhealthy={d['details'].get('unhealthy', {})}")
        elif r.kind == "rollback":
            text = f"performed={d['performed']} waves={d['waves']}: {d['why']}"
        elif r.kind == "execution_end":
            text = f"{d['state']}: {d['reason']}"
        elif r.kind in ("wave_start", "wave_end"):
            text = f"wave {d['wave']} " + (f"targets={d['targets']}" if r.kind == "wave_start" else f"state={d['state']}")
        else:
            text = ""
        lines.append(f"#{r.seq:<3} {r.kind:<15} {r.actor:<28} {text}")
    return lines


def plan_for(
    *,
    groups: list[dict] | None = None,
    instances: list[dict] | None = None,
    waves: list[dict],
    to_image: str,
    from_image: str = "old-image",
    platform: str = "aws",
    environment: str = "dev",
    autonomy_mode: str = "full_auto",
    risk_level: str = "low",
    max_unavailable: int = 1,
    timeout_seconds: int = 60,
    min_healthy_percent: int = 100,
    soak_seconds: int = 0,
    window: dict | None = None,
    rollback: dict | None = None,
) -> PatchPlan:
    """A sealed PatchPlan (the shape of tests/remediation/test_plans.py); every target carries the
    from-family "golden" unless it names its own (the gate refuses a target without one)."""
    spec: dict[str, Any] = {
        "targets": {"groups": [{"from_family": "golden", **g} for g in groups or []],
                    "instances": [{"from_family": "golden", **t} for t in instances or []]},
        "from_images": [{"image_ref": from_image, "family": "golden", "version": "1.0.0"}],
        "to_image": {"image_ref": to_image, "family": "golden", "version": "2.0.0"},
        "waves": waves,
        "health_gate": {"timeout_seconds": timeout_seconds, "min_healthy_percent": min_healthy_percent,
                        "soak_seconds": soak_seconds},
        "max_unavailable": max_unavailable,
        "rollback": rollback or {"strategy": "previous_launch_template_version"},
    }
    if window:
        spec["maintenance_window"] = window
    doc = {
        "metadata": {
            "id": f"plan-{platform}-test",
            "created_at": "2026-11-27T10:00:00Z",
            "created_by": "sensor:drift_breach",
            "reason": "drift above threshold",
            "environment": environment,
            "platform": platform,
            "site": "lon1",
            "risk_level": risk_level,
            "autonomy_mode": autonomy_mode,
        },
        "spec": spec,
    }
    return PatchPlan.model_validate(doc).sealed()


def three_waves(group: str, instances: tuple[list[str], list[str], list[str]] = ([], [], [])) -> list[dict]:
    """Canary 10 %, then 45 % and 45 % of ``group`` (2, 6, 4 of 12: the last wave takes the rest)."""
    return [
        {"name": "canary", "canary": True, "groups": [group], "group_percent": 10, "instances": instances[0]},
        {"name": "batch-1", "groups": [group], "group_percent": 45, "instances": instances[1]},
        {"name": "batch-2", "groups": [group], "group_percent": 45, "instances": instances[2]},
    ]


# --------------------------------------------------------------------------------------------------
# AWS: a 12-instance ASG on a launch template, on moto
# --------------------------------------------------------------------------------------------------


@dataclass
class AsgEstate:
    region: str
    asg: str
    template_id: str
    old_ami: str
    golden_ami: str
    members: list[str]
    standalone: list[str]


def seed_asg(session: Any, endpoint: str, *, region: str = "eu-west-1", size: int = 12, standalone: int = 0,
             name: str = "web") -> AsgEstate:
    """Two AMIs (old, golden), a launch template (v1: old AMI, t3.micro) and an ASG of ``size`` on
    version 1, plus ``standalone`` plain instances on the old AMI."""
    ec2 = session.client("ec2", region_name=region, endpoint_url=endpoint)
    asg = session.client("autoscaling", region_name=region, endpoint_url=endpoint)
    old = ec2.register_image(Name=f"{name}-golden-1.0.0", Description="old golden")["ImageId"]
    golden = ec2.register_image(Name=f"{name}-golden-2.0.0", Description="new golden")["ImageId"]
    lt = ec2.create_launch_template(
        LaunchTemplateName=f"{name}-lt",
        LaunchTemplateData={"ImageId": old, "InstanceType": "t3.micro"},
    )["LaunchTemplate"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName=f"{name}-asg",
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"], "Version": "1"},
        MinSize=0,
        MaxSize=size * 2,
        DesiredCapacity=size,
        AvailabilityZones=[f"{region}a"],
    )
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"{name}-asg"])["AutoScalingGroups"][0]
    plain: list[str] = []
    if standalone:
        resp = ec2.run_instances(
            ImageId=old, MinCount=standalone, MaxCount=standalone, InstanceType="t3.small",
            Placement={"AvailabilityZone": f"{region}a"},
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": f"{name}-db"},
                                                                     {"Key": "owner", "Value": "team-data"}]}],
        )
        plain = sorted(i["InstanceId"] for i in resp["Instances"])
    return AsgEstate(region, f"{name}-asg", lt["LaunchTemplateId"], old, golden,
                     sorted(i["InstanceId"] for i in group["Instances"]), plain)


def asg_plan(estate: AsgEstate, *, account: str = "123456789012", **over: Any) -> PatchPlan:
    instances = [
        {"asset_id": iid, "platform": "aws", "account": account, "region": estate.region, "name": f"db-{n}"}
        for n, iid in enumerate(estate.standalone)
    ]
    split: tuple[list[str], list[str], list[str]] = ([], list(estate.standalone[:1]), list(estate.standalone[1:]))
    kwargs: dict[str, Any] = {
        "groups": [{"kind": "asg", "platform": "aws", "account": account, "region": estate.region,
                    "name": estate.asg, "size": len(estate.members)}],
        "instances": instances,
        "waves": three_waves(estate.asg, split),
        "to_image": estate.golden_ami,
        "from_image": estate.old_ami,
        "max_unavailable": 2,
        "min_healthy_percent": 100,
    }
    kwargs.update(over)
    return plan_for(**kwargs)


def asg_images(session: Any, endpoint: str, estate: AsgEstate) -> tuple[str, dict[str, str]]:
    """(the group's launch-template version, {member id: ImageId})."""
    ec2 = session.client("ec2", region_name=estate.region, endpoint_url=endpoint)
    asg = session.client("autoscaling", region_name=estate.region, endpoint_url=endpoint)
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[estate.asg])["AutoScalingGroups"][0]
    ids = [i["InstanceId"] for i in group["Instances"]]
    images: dict[str, str] = {}
    if ids:
        for res in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            for inst in res["Instances"]:
                images[inst["InstanceId"]] = inst["ImageId"]
    return str(group["LaunchTemplate"]["Version"]), images


class StopOneCanary:
    """The real AWS driver, except that one freshly launched canary instance is stopped right after
    wave 0 (an instance that never comes up healthy)."""

    def __init__(self, inner: Any, region: str, endpoint: str):
        self.inner, self.region, self.endpoint, self.stopped = inner, region, endpoint, None

    def prepare(self, plan: PatchPlan) -> Any:
        return self.inner.prepare(plan)

    def run_wave(self, plan: PatchPlan, index: int) -> dict:
        import boto3

        details = self.inner.run_wave(plan, index)
        if index == 0:
            group = next(iter(details["groups"].values()))
            self.stopped = group["launched"][0]
            ec2 = boto3.client("ec2", region_name=self.region, endpoint_url=self.endpoint)
            ec2.stop_instances(InstanceIds=[self.stopped])
        return details

    def health(self, plan: PatchPlan, index: int) -> Any:
        return self.inner.health(plan, index)

    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict:
        return self.inner.rollback(plan, waves_done)


# --- approvals: gate decisions and the plan the task-store tests propose ------------------------------

PENDING = {"allow": False, "requires_approval": True, "deny": [], "approval_reasons": ["risk level high always needs approval"],
           "approved": False, "source": "embedded", "input": {"action": "execute_wave", "environment": "prod", "wave": 0}}
ALLOW = {"allow": True, "requires_approval": False, "deny": [], "approval_reasons": [], "approved": False,
         "input": {"action": "execute_wave", "environment": "dev", "wave": 0}}
DENY = {"allow": False, "requires_approval": False, "deny": ["production is never full_auto: set the prod autonomy mode"],
        "approval_reasons": [], "approved": False, "input": {"action": "execute_wave", "environment": "prod"}}


def make_plan(plan_id: str = "plan-1", environment: str = "prod", to_ref: str = "ami-0000000000000bbb2") -> PatchPlan:
    """A high-risk, canary-only prod plan over three AWS VMs: the approvals tests' standard proposal."""
    doc = {
        "metadata": {"id": plan_id, "created_at": "2026-11-27T10:00:00Z", "created_by": "sensor:drift_breach",
                     "reason": "lon1 prod drift 41 > 30", "environment": environment, "platform": "aws", "site": "lon1",
                     "risk_level": "high", "autonomy_mode": "canary_only"},
        "spec": {
            "targets": {"instances": [
                {"asset_id": f"i-{n}", "platform": "aws", "account": "1", "region": "eu-west-1", "name": f"web-{n}",
                 "from_family": "ubuntu-22.04"}
                for n in range(3)
            ]},
            "from_images": [{"image_ref": "ami-0000000000000aaa1", "family": "ubuntu-22.04", "version": "2.1.0"}],
            "to_image": {"image_ref": to_ref, "family": "ubuntu-22.04", "version": "3.0.0"},
            "waves": [{"name": "canary", "canary": True, "instances": ["i-0"]},
                      {"name": "batch-1", "instances": ["i-1", "i-2"]}],
            "rollback": {"strategy": "previous_image", "image_ref": "ami-0000000000000aaa1"},
        },
    }
    return PatchPlan.model_validate(doc)


def race(action: Callable[[], object], racers: int, refused: type[Exception]) -> list[str]:
    """Run `action` in `racers` threads at once: "won" for each that returned, "refused" for each
    that raised `refused` (sorted, so a single winner reads ``["refused", ..., "won"]``)."""
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            action()
            outcomes.append("won")
        except refused:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt) for _ in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


class AfterWave:
    """The real driver, with ``hook(index, details)`` run right after each wave: how a test breaks a
    canary (stops it, powers it off) the moment the driver has made it."""

    def __init__(self, inner: Any, hook: Callable[[int, dict], None]):
        self.inner, self.hook = inner, hook

    def prepare(self, plan: PatchPlan) -> Any:
        return self.inner.prepare(plan)

    def run_wave(self, plan: PatchPlan, index: int) -> dict:
        details = self.inner.run_wave(plan, index)
        self.hook(index, details)
        return details

    def health(self, plan: PatchPlan, index: int) -> Any:
        return self.inner.health(plan, index)

    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict:
        return self.inner.rollback(plan, waves_done)
