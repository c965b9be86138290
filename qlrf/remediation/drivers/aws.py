"""AWS execution driver (boto3): Auto Scaling groups and standalone EC2 instances.

Groups (``kind: asg``):

- ``prepare``: reads the group's launch template and version; a group on ``$Latest`` is first pinned
  to the version number it runs (creating a version must not change what ``$Latest`` launches
  behind the plan's back); then creates a new launch-template version from it
  (``SourceVersion``, plus its plain fields copied) with the golden AMI as ``ImageId``.
- ``run_wave``: points the group at the new version (``update_auto_scaling_group``), then replaces
  the wave's share of instances still on an old image, ``max_unavailable`` at a time:
  ``terminate_instance_in_auto_scaling_group(ShouldDecrementDesiredCapacity=False)`` and wait until
  the group is back to its desired capacity in service with the replacements. (Instance refresh is
  not used: moto 5.2.5 has no StartInstanceRefresh, and explicit terminations give the plan's
  exact waves.)
- ``health``: every instance on the golden AMI must be ``InService`` + ``Healthy`` in the group, EC2
  state ``running`` and, when the plan requires status checks, instance and system status ``ok``
  (DescribeInstanceStatus); the group passes with ``min_healthy_percent`` of them.
- ``rollback``: the group goes back to the previous version (the plan's
  ``rollback.launch_template_version`` if given, else the version it ran before ``prepare``) and
  its golden-AMI instances are replaced the same way, so they come back on the previous image.

- ``members``: for canary analysis, the instances on the golden AMI (canary) and the rest (baseline).

Standalone instances (``asset_id`` = instance id): ``run_instances`` from the golden AMI with the
old one's type, subnet, security groups, key, instance profile and tags (+ ``qlrf:replaces``,
``qlrf:plan``), wait for ``running`` and status checks ``ok``, then terminate the old instance.
Rollback terminates the replacements and, where the old instance is gone, launches one from its
previous image with the same settings (tagged ``qlrf:restores``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from qlrf.envparse import environ
from qlrf.remediation.calls import CallRecorder, CloudCall
from qlrf.remediation.drivers import (
    DriverError,
    chunks,
    group_quota,
    groups_through,
    instances_through,
    passes,
    wait_for,
)
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.plans import PatchPlan

# Launch-template data fields whose describe shape is also the request shape (copied into the new
# version on top of SourceVersion; emulators that ignore SourceVersion still get them).
_COPY_FIELDS = (
    "InstanceType",
    "KeyName",
    "SecurityGroupIds",
    "SecurityGroups",
    "UserData",
    "TagSpecifications",
    "IamInstanceProfile",
    "EbsOptimized",
    "DisableApiTermination",
    "InstanceInitiatedShutdownBehavior",
)


@dataclass
class AwsDriverConfig:
    """Credentials come from boto3's default chain (or ``profile``); nothing secret is configured here."""

    endpoint_url: str | None = None  # tests; boto3 also honours AWS_ENDPOINT_URL
    profile: str | None = None
    max_attempts: int = 10  # botocore retries (adaptive mode)
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    poll_interval: float = 5.0  # between looks while replacements come up
    replace_timeout: float = 900.0  # per chunk of replacements
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)


def _positive_float(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected a number > 0") from None
    if value <= 0:
        raise ValueError(f"{name}={text!r}: expected a number > 0")
    return value


def config_from_env(env: Mapping[str, str] | None = None) -> AwsDriverConfig:
    """AWS_ENDPOINT_URL (boto3's own), AWS_PROFILE, QLRF_AWS_MAX_ATTEMPTS, QLRF_REMEDIATION_POLL_SECONDS,
    QLRF_REMEDIATION_REPLACE_TIMEOUT. Read when called, never at import."""
    env = environ(env)
    config = AwsDriverConfig(endpoint_url=env.get("AWS_ENDPOINT_URL") or None, profile=env.get("AWS_PROFILE") or None)
    if env.get("QLRF_AWS_MAX_ATTEMPTS"):
        config.max_attempts = int(_positive_float(env["QLRF_AWS_MAX_ATTEMPTS"], "QLRF_AWS_MAX_ATTEMPTS"))
    if env.get("QLRF_REMEDIATION_POLL_SECONDS"):
        config.poll_interval = _positive_float(env["QLRF_REMEDIATION_POLL_SECONDS"], "QLRF_REMEDIATION_POLL_SECONDS")
    if env.get("QLRF_REMEDIATION_REPLACE_TIMEOUT"):
        config.replace_timeout = _positive_float(
            env["QLRF_REMEDIATION_REPLACE_TIMEOUT"], "QLRF_REMEDIATION_REPLACE_TIMEOUT"
        )
    return config


@dataclass
class _Group:
    name: str
    region: str
    template_id: str
    original_version: str  # what the group named before prepare: "$Latest", "$Default" or a number
    running_version: str  # the number that resolved to
    rollback_version: str  # what rollback restores
    previous_image: str
    new_version: str = ""
    pinned: bool = False
    switched: bool = False  # the group points at new_version
    replaced: list[str] = field(default_factory=list)  # old instances terminated by the plan
    launched: list[str] = field(default_factory=list)  # their replacements
    by_wave: dict[str, list[str]] = field(default_factory=dict)  # wave index -> old instances it replaced


@dataclass
class _Instance:
    asset_id: str
    region: str
    spec: dict[str, Any]  # run_instances arguments that recreate it (without ImageId)
    image: str  # its image before the plan
    replacement: str | None = None
    old_terminated: bool = False
    skipped: bool = False  # already on the golden image


class AwsDriver:
    """Executes one plan's AWS targets; see the module docstring."""

    def __init__(self, config: AwsDriverConfig | None = None, session: Any = None, recorder: CallRecorder | None = None):
        self.config = config or AwsDriverConfig()
        self.recorder = recorder or CallRecorder()
        self._session = session
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self.groups: dict[str, _Group] = {}
        self.instances: dict[str, _Instance] = {}
        self.golden = ""
        self._plan_tag = ""
        self._run_id = uuid.uuid4().hex[:12]  # client tokens: idempotent retries (restored with the checkpoint)

    # -- state (qlrf.remediation.journal) ---------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """Everything rollback() and a resumed run need, as JSON: the groups' template versions and
        previous images, the standalone instances' launch specs, replacements and client-token run id."""
        return {"golden": self.golden, "plan_tag": self._plan_tag, "run_id": self._run_id,
                "groups": {n: asdict(g) for n, g in self.groups.items()},
                "instances": {a: asdict(i) for a, i in self.instances.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        """Load a checkpoint into this (fresh) driver: the same client tokens, versions and replacements."""
        self.golden, self._plan_tag, self._run_id = state["golden"], state["plan_tag"], state["run_id"]
        self.groups = {n: _Group(**g) for n, g in state["groups"].items()}
        self.instances = {a: _Instance(**i) for a, i in state["instances"].items()}

    # -- clients ----------------------------------------------------------------------------------
    def client(self, service: str, region: str) -> Any:
        with self._lock:
            key = (service, region)
            if key not in self._clients:
                import boto3
                from botocore.config import Config

                if self._session is None:
                    self._session = boto3.Session(profile_name=self.config.profile) if self.config.profile else boto3.Session()
                self._clients[key] = self._session.client(
                    service,
                    region_name=region,
                    endpoint_url=self.config.endpoint_url,
                    config=Config(
                        retries={"mode": "adaptive", "max_attempts": self.config.max_attempts},
                        connect_timeout=self.config.connect_timeout,
                        read_timeout=self.config.read_timeout,
                        user_agent_extra="qlrf-remediation",
                    ),
                )
            return self._clients[key]

    def _send(self, service: str, operation: str, target: str, params: dict[str, Any], perform: Callable[[], Any],
              dry_result: Any = None) -> Any:
        """Every mutating call goes through here: recorded, and made unless this is a dry run."""
        return self.recorder.send(CloudCall("aws", service, operation, target, params), perform, dry_result)

    def _wait(self, what: str, check: Callable[[], Any]) -> Any:
        return wait_for(what, check, timeout=self.config.replace_timeout, interval=self.config.poll_interval,
                        sleep=self.config.sleep)

    # -- reads ------------------------------------------------------------------------------------
    def _describe_group(self, g: _Group | str, region: str | None = None) -> dict:
        name = g.name if isinstance(g, _Group) else g
        region = g.region if isinstance(g, _Group) else region
        found = self.client("autoscaling", region).describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ]
        if not found:
            raise DriverError(f"Auto Scaling group {name!r} not found in {region}")
        return found[0]

    def _describe_instances(self, region: str, ids: list[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        ec2 = self.client("ec2", region)
        for chunk in chunks(sorted(set(ids)), 200):
            for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=chunk):
                for res in page["Reservations"]:
                    for inst in res["Instances"]:
                        out[inst["InstanceId"]] = inst
        return out

    def _status_checks(self, region: str, ids: list[str]) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        ec2 = self.client("ec2", region)
        for chunk in chunks(sorted(set(ids)), 100):
            resp = ec2.describe_instance_status(InstanceIds=chunk, IncludeAllInstances=True)
            for st in resp["InstanceStatuses"]:
                out[st["InstanceId"]] = (
                    st.get("InstanceStatus", {}).get("Status", "unknown"),
                    st.get("SystemStatus", {}).get("Status", "unknown"),
                )
        return out

    def _members(self, g: _Group) -> tuple[dict, dict[str, dict]]:
        group = self._describe_group(g)
        ids = [i["InstanceId"] for i in group["Instances"]]
        return group, self._describe_instances(g.region, ids) if ids else {}

    # -- prepare ----------------------------------------------------------------------------------
    def prepare(self, plan: PatchPlan) -> dict[str, Any]:
        self.golden = plan.spec.to_image.image_ref
        self._plan_tag = plan.metadata.id
        details: dict[str, Any] = {"groups": {}, "instances": {}}
        for target in plan.spec.targets.groups:
            if target.platform != "aws" or target.kind != "asg":
                raise DriverError(f"group {target.name!r}: the AWS driver handles kind asg on aws, not {target.kind} on {target.platform}")
            details["groups"][target.name] = self._prepare_group(plan, target.name, target.region)
        for target in plan.spec.targets.instances:
            if target.platform != "aws":
                raise DriverError(f"instance {target.asset_id!r}: platform {target.platform} is not aws")
            details["instances"][target.asset_id] = self._prepare_instance(target.asset_id, target.region)
        return details

    def _prepare_group(self, plan: PatchPlan, name: str, region: str) -> dict[str, Any]:
        group = self._describe_group(name, region)
        lt = group.get("LaunchTemplate")
        if not lt:
            raise DriverError(
                f"Auto Scaling group {name!r} launches from a launch configuration or a mixed instances policy; "
                "only a launch template is supported"
            )
        ec2 = self.client("ec2", region)
        asg = self.client("autoscaling", region)
        template_id = lt.get("LaunchTemplateId")
        if not template_id:
            template_id = ec2.describe_launch_templates(LaunchTemplateNames=[lt["LaunchTemplateName"]])["LaunchTemplates"][0][
                "LaunchTemplateId"
            ]
        original = str(lt.get("Version") or "$Default")
        current = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=[original])[
            "LaunchTemplateVersions"
        ][0]
        number = str(current["VersionNumber"])
        rollback = plan.spec.rollback
        rollback_version = (
            rollback.launch_template_version
            if rollback.strategy == "previous_launch_template_version" and rollback.launch_template_version
            else number
        )
        if rollback_version == number:
            previous_image = current["LaunchTemplateData"].get("ImageId", "")
        else:
            previous_image = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=[rollback_version])[
                "LaunchTemplateVersions"
            ][0]["LaunchTemplateData"].get("ImageId", "")
        g = _Group(name, region, template_id, original, number, rollback_version, previous_image)
        if original == "$Latest":
            pin = {"AutoScalingGroupName": name, "LaunchTemplate": {"LaunchTemplateId": template_id, "Version": number}}
            self._send("autoscaling", "UpdateAutoScalingGroup", name, pin, lambda: asg.update_auto_scaling_group(**pin))
            g.pinned = True
        data = {k: current["LaunchTemplateData"][k] for k in _COPY_FIELDS if k in current["LaunchTemplateData"]}
        data["ImageId"] = self.golden
        request = {"LaunchTemplateId": template_id, "SourceVersion": number,
                   "VersionDescription": f"qlrf plan {plan.metadata.id}: {plan.spec.to_image.version}"[:255],
                   "LaunchTemplateData": data}
        created = self._send(
            "ec2", "CreateLaunchTemplateVersion", template_id,
            {"SourceVersion": number, "ImageId": self.golden},
            lambda: ec2.create_launch_template_version(**request),
            dry_result={"LaunchTemplateVersion": {"VersionNumber": "(new)"}},
        )["LaunchTemplateVersion"]
        g.new_version = str(created["VersionNumber"])
        self.groups[name] = g
        return {
            "launch_template": template_id,
            "from_version": original,
            "running_version": number,
            "new_version": g.new_version,
            "rollback_version": rollback_version,
            "pinned": g.pinned,
            "previous_image": previous_image,
        }

    def _prepare_instance(self, asset_id: str, region: str) -> dict[str, Any]:
        found = self._describe_instances(region, [asset_id])
        inst = found.get(asset_id)
        if inst is None or inst["State"]["Name"] in ("terminated", "shutting-down"):
            raise DriverError(f"instance {asset_id} not found (or terminated) in {region}")
        spec: dict[str, Any] = {"InstanceType": inst["InstanceType"]}
        if inst.get("SubnetId"):
            spec["SubnetId"] = inst["SubnetId"]
            groups = [g["GroupId"] for g in inst.get("SecurityGroups") or [] if g.get("GroupId")]
            if groups:
                spec["SecurityGroupIds"] = groups
        elif inst.get("Placement", {}).get("AvailabilityZone"):
            spec["Placement"] = {"AvailabilityZone": inst["Placement"]["AvailabilityZone"]}
        if inst.get("KeyName"):
            spec["KeyName"] = inst["KeyName"]
        if inst.get("IamInstanceProfile", {}).get("Arn"):
            spec["IamInstanceProfile"] = {"Arn": inst["IamInstanceProfile"]["Arn"]}
        spec["Tags"] = [t for t in inst.get("Tags") or [] if not t["Key"].startswith(("aws:", "qlrf:"))]
        st = _Instance(asset_id, region, spec, inst.get("ImageId", ""), skipped=inst.get("ImageId") == self.golden)
        self.instances[asset_id] = st
        return {"image": st.image, "type": spec["InstanceType"], "subnet": spec.get("SubnetId"), "skipped": st.skipped}

    # -- waves ------------------------------------------------------------------------------------
    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        wave = plan.spec.waves[index]
        size = plan.spec.max_unavailable
        details: dict[str, Any] = {"groups": {}, "instances": {}}
        for name in wave.groups:
            g = self.groups[name]
            if not (g.switched and self.recorder.dry_run):  # a dry run's group still shows the old version
                self._switch(g, g.new_version)
            g.switched = True
            _, images = self._members(g)
            done = g.by_wave.setdefault(str(index), [])  # a resumed wave: what it replaced before the crash
            if not self.recorder.dry_run:  # noted but still an old member: its termination was never sent
                kept = {iid for iid, inst in images.items() if inst.get("ImageId") != self.golden}
                done[:] = [i for i in done if i not in kept]
                g.replaced = [i for i in g.replaced if i not in kept]
            old = sorted(iid for iid, inst in images.items() if inst.get("ImageId") != self.golden and iid not in g.replaced)
            quota = group_quota(plan, index, name)
            pick = old if quota is None else old[: max(0, quota - len(done))]
            launched: list[str] = []
            for chunk in chunks(pick, size):
                done += chunk  # noted before the calls: a checkpoint taken during them already counts them
                g.replaced += chunk
                launched += self._replace_in_group(g, chunk)
            g.launched += launched
            details["groups"][name] = {"version": g.new_version, "replaced": pick, "launched": launched,
                                       "chunks": len(chunks(pick, size))}
        for chunk in chunks(wave.instances, size):
            details["instances"].update(self._replace_standalone(chunk))
        return details

    def _switch(self, g: _Group, version: str) -> None:
        group = self._describe_group(g)
        if str(group.get("LaunchTemplate", {}).get("Version")) != version:
            switch = {"AutoScalingGroupName": g.name, "LaunchTemplate": {"LaunchTemplateId": g.template_id, "Version": version}}
            asg = self.client("autoscaling", g.region)
            self._send("autoscaling", "UpdateAutoScalingGroup", g.name, switch, lambda: asg.update_auto_scaling_group(**switch))

    def _replace_in_group(self, g: _Group, chunk: list[str]) -> list[str]:
        """Terminate ``chunk`` without lowering the desired capacity; wait for the group to refill."""
        before = {i["InstanceId"] for i in self._describe_group(g)["Instances"]}
        asg = self.client("autoscaling", g.region)
        for iid in chunk:
            self._send("autoscaling", "TerminateInstanceInAutoScalingGroup", iid,
                       {"AutoScalingGroupName": g.name, "ShouldDecrementDesiredCapacity": False},
                       lambda iid=iid: asg.terminate_instance_in_auto_scaling_group(
                           InstanceId=iid, ShouldDecrementDesiredCapacity=False))
        if self.recorder.dry_run:
            return [f"(replacement of {iid})" for iid in chunk]
        gone = set(chunk)

        def refilled() -> list[str] | None:
            group = self._describe_group(g)
            ids = {i["InstanceId"] for i in group["Instances"]}
            if ids & gone:
                return None
            in_service = [i for i in group["Instances"] if i["LifecycleState"] == "InService"]
            new = sorted(ids - before)
            if len(new) < len(chunk) or len(in_service) < group["DesiredCapacity"]:
                return None
            return new

        return self._wait(f"group {g.name} to replace {', '.join(chunk)}", refilled)

    def _run(self, st: _Instance, image: str, tags: list[dict[str, str]], token: str) -> str:
        spec = {k: v for k, v in st.spec.items() if k != "Tags"}
        ec2 = self.client("ec2", st.region)
        resp = self._send(
            "ec2", "RunInstances", st.asset_id, {"ImageId": image, **{k: v for k, v in spec.items() if k != "Placement"}},
            lambda: ec2.run_instances(
                ImageId=image, MinCount=1, MaxCount=1, ClientToken=token[:64],
                TagSpecifications=[{"ResourceType": "instance", "Tags": st.spec["Tags"] + tags}], **spec,
            ),
            dry_result={"Instances": [{"InstanceId": f"(new for {st.asset_id})"}]},
        )
        return resp["Instances"][0]["InstanceId"]

    def _launched_for(self, st: _Instance, tag: str) -> str | None:
        """An instance this plan already launched for ``st`` (tag ``tag`` = its id) and did not terminate:
        a run killed between RunInstances and its journalled result left it; it is reused, not doubled."""
        pages = self.client("ec2", st.region).get_paginator("describe_instances").paginate(Filters=[
            {"Name": f"tag:{tag}", "Values": [st.asset_id]}, {"Name": "tag:qlrf:plan", "Values": [self._plan_tag]},
            {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
        found = sorted(i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"])
        return found[0] if found else None

    def _gone(self, st: _Instance) -> bool:
        state = self._describe_instances(st.region, [st.asset_id]).get(st.asset_id, {}).get("State", {}).get("Name")
        return state in (None, "shutting-down", "terminated")

    def _running_ok(self, region: str, ids: list[str]) -> bool:
        images = self._describe_instances(region, ids)
        if any(images.get(i, {}).get("State", {}).get("Name") != "running" for i in ids):
            return False
        checks = self._status_checks(region, ids)
        return all(checks.get(i) == ("ok", "ok") for i in ids)

    def _replace_standalone(self, chunk: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        todo = [self.instances[a] for a in chunk if not self.instances[a].skipped]
        for st in todo:
            if st.replacement is None and not self.recorder.dry_run:
                st.replacement = self._launched_for(st, "qlrf:replaces")
            if st.replacement is None:
                st.replacement = self._run(
                    st,
                    self.golden,
                    [{"Key": "qlrf:replaces", "Value": st.asset_id}, {"Key": "qlrf:plan", "Value": self._plan_tag}],
                    f"qlrf-{self._run_id}-{st.asset_id}",
                )
        by_region: dict[str, list[str]] = {}
        for st in todo:
            by_region.setdefault(st.region, []).append(st.replacement)  # type: ignore[arg-type]
        for region, ids in ({} if self.recorder.dry_run else by_region).items():  # a dry run launched nothing to wait for
            self._wait(f"replacements {', '.join(ids)} running with status checks ok",
                       lambda region=region, ids=ids: self._running_ok(region, ids))
        for st in todo:
            ec2 = self.client("ec2", st.region)
            self._send("ec2", "TerminateInstances", st.asset_id, {"InstanceIds": [st.asset_id]},
                       lambda st=st, ec2=ec2: ec2.terminate_instances(InstanceIds=[st.asset_id]))
            st.old_terminated = True
            out[st.asset_id] = {"replacement": st.replacement, "terminated": st.asset_id}
        for a in chunk:
            if self.instances[a].skipped:
                out[a] = {"skipped": "already on the golden image"}
        return out

    # -- health -----------------------------------------------------------------------------------
    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        gate = plan.spec.health_gate
        total = healthy = 0
        ok_all = True
        details: dict[str, Any] = {"groups": {}, "instances": {}}
        unhealthy: dict[str, str] = {}
        for name in groups_through(plan, index):
            g = self.groups[name]
            group, images = self._members(g)
            golden = sorted(i for i, inst in images.items() if inst.get("ImageId") == self.golden)
            checks = self._status_checks(g.region, golden) if golden and gate.require_status_checks else {}
            members = {i["InstanceId"]: i for i in group["Instances"]}
            good = 0
            for iid in golden:
                problem = _problem(members[iid], images[iid], checks.get(iid), gate.require_status_checks)
                if problem:
                    unhealthy[iid] = problem
                else:
                    good += 1
            expected = max(len(golden), len(g.replaced))
            passed = passes(plan, good, expected, group=True)
            ok_all &= passed
            total += expected
            healthy += good
            details["groups"][name] = {"golden": len(golden), "expected": expected, "healthy": good, "passed": passed,
                                       "desired": group["DesiredCapacity"], "members": len(members)}
        for asset in instances_through(plan, index):
            st = self.instances[asset]
            if st.skipped:
                continue
            total += 1
            iid = st.replacement
            if iid is None:
                unhealthy[asset] = "no replacement launched"
                ok_all = False
                continue
            inst = self._describe_instances(st.region, [iid]).get(iid, {})
            check = self._status_checks(st.region, [iid]).get(iid) if gate.require_status_checks else None
            problem = _problem(None, inst, check, gate.require_status_checks)
            if problem:
                unhealthy[iid] = problem
                ok_all = False
            else:
                healthy += 1
            details["instances"][asset] = {"replacement": iid, "problem": problem}
        if unhealthy:
            details["unhealthy"] = unhealthy
        return HealthReport(ok_all and total > 0, total, healthy, details)

    # -- canary analysis --------------------------------------------------------------------------
    def members(self, plan: PatchPlan, index: int) -> tuple[list[str], list[str]]:
        """(canary, baseline) instance ids after wave ``index``: the group members on the golden AMI
        and the standalone replacements of waves 0..index, against the members still on another
        image (groups not yet touched included) and the standalone instances of later waves."""
        changed: list[str] = []
        baseline: list[str] = []
        for g in self.groups.values():
            _, images = self._members(g)
            for iid, inst in sorted(images.items()):
                (changed if inst.get("ImageId") == self.golden else baseline).append(iid)
        done = set(instances_through(plan, index))
        for asset, st in self.instances.items():
            if asset in done and st.replacement and not st.skipped:
                changed.append(st.replacement)
            elif asset not in done and not st.skipped:
                baseline.append(asset)
        return changed, baseline

    # -- rollback ---------------------------------------------------------------------------------
    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        size = plan.spec.max_unavailable
        details: dict[str, Any] = {"groups": {}, "instances": {}}
        errors: list[str] = []
        last = max(waves_done) if waves_done else -1
        for name in groups_through(plan, last) if last >= 0 else []:
            g = self.groups.get(name)
            if g is None:
                continue
            try:
                self._switch(g, g.rollback_version)
                _, images = self._members(g)
                golden = sorted(i for i, inst in images.items() if inst.get("ImageId") == self.golden)
                restored: list[str] = []
                for chunk in chunks(golden, size):
                    restored += self._replace_in_group(g, chunk)
                details["groups"][name] = {"version": g.rollback_version, "image": g.previous_image,
                                           "replaced": golden, "launched": restored}
            except Exception as exc:  # noqa: BLE001 - roll back the rest, then report
                errors.append(f"group {name}: {type(exc).__name__}: {exc}")
        for asset in instances_through(plan, last) if last >= 0 else []:
            st = self.instances.get(asset)
            if st is None or st.skipped:
                continue
            try:
                done: dict[str, Any] = {}
                if st.replacement is None and not self.recorder.dry_run:
                    st.replacement = self._launched_for(st, "qlrf:replaces")  # launched, result never journalled
                if st.replacement:
                    ec2 = self.client("ec2", st.region)
                    self._send("ec2", "TerminateInstances", st.replacement, {"InstanceIds": [st.replacement]},
                               lambda st=st, ec2=ec2: ec2.terminate_instances(InstanceIds=[st.replacement]))
                    done["terminated"] = st.replacement
                if not st.old_terminated and not self.recorder.dry_run:
                    st.old_terminated = self._gone(st)  # terminated by a run killed before it noted so
                if st.old_terminated:
                    new = None if self.recorder.dry_run else self._launched_for(st, "qlrf:restores")
                    new = new or self._run(st, st.image, [{"Key": "qlrf:restores", "Value": st.asset_id},
                                                   {"Key": "qlrf:plan", "Value": self._plan_tag}],
                                    f"qlrf-r-{self._run_id}-{st.asset_id}")
                    if not self.recorder.dry_run:
                        self._wait(f"restored {new} running", lambda st=st, new=new: self._running_ok(st.region, [new]))
                    done["restored"] = new
                    done["image"] = st.image
                details["instances"][asset] = done
            except Exception as exc:  # noqa: BLE001
                errors.append(f"instance {asset}: {type(exc).__name__}: {exc}")
        if errors:
            raise DriverError("rollback incomplete: " + "; ".join(errors))
        return details


def _problem(member: dict | None, inst: dict, check: tuple[str, str] | None, require_checks: bool) -> str | None:
    """Why one instance fails the health gate, or None."""
    if member is not None:
        if member.get("LifecycleState") != "InService":
            return f"lifecycle {member.get('LifecycleState')}"
        if member.get("HealthStatus") != "Healthy":
            return f"group health {member.get('HealthStatus')}"
    state = inst.get("State", {}).get("Name", "missing")
    if state != "running":
        return f"state {state}"
    if require_checks and check != ("ok", "ok"):
        return f"status checks {check or 'missing'}"
    return None


__all__ = ["AwsDriver", "AwsDriverConfig", "config_from_env"]
