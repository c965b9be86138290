"""GCP drill driver (google-cloud-compute, REST): snapshot -> disk -> instance in the DR region.

- ``locate``: the instance (``instances.get`` by name in its zone), its boot disk, and the newest
  ``READY`` snapshot whose ``sourceDisk`` is that disk.
- ``copy``: nothing to copy: GCE snapshots are global (skipped).
- ``provision``: ``disks.insert`` in the DR zone (the plan's ``zone``, else ``<region>-a``) from the
  snapshot; ready when the disk is ``READY``.
- ``launch``: ``instances.insert`` booting that disk (``autoDelete``), the source's machine type (or
  the plan's); a 403 ``quotaExceeded`` is the DR region's quota: failed at ``launch`` naming it.
- ``verify``: ``RUNNING``; ``STOPPING``/``STOPPED``/``TERMINATED``/``SUSPENDED`` will not get better.
- Tags are GCE labels set in the insert itself (no untagged window): ``qlrf-drill`` (the drill id),
  ``qlrf-drill-vm``, ``qlrf-drill-plan``, ``qlrf-drill-started`` (``YYYYmmddtHHMMSSz``); names are
  ``qlrf-drill-<10 hex of the drill>-<6 hex of the VM>`` (GCE names are at most 63 characters).
- ``leftovers``: instances and disks labelled ``qlrf-drill`` in the DR project's zones of the region;
  ``remove``: delete instances (waiting for the operation), then disks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from qlrf.dr.drivers import (
    TAG_DRILL,
    TAG_PLAN,
    TAG_STARTED,
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
from qlrf.inventory.connectors.gcp import GcpConfig
from qlrf.inventory.connectors.gcp import config_from_env as _gcp_from_env
from qlrf.inventory.connectors.gcp.sessions import make_credentials

LABELS = {TAG_DRILL: "qlrf-drill", TAG_VM: "qlrf-drill-vm", TAG_PLAN: "qlrf-drill-plan", TAG_STARTED: "qlrf-drill-started"}
_DEAD = ("STOPPING", "STOPPED", "TERMINATED", "SUSPENDING", "SUSPENDED")


@dataclass
class GcpDrillConfig:
    gcp: GcpConfig = field(default_factory=GcpConfig)
    operation_timeout: float = 300.0


def config_from_env(env: Mapping[str, str] | None = None) -> GcpDrillConfig:
    """The discovery connector's variables (QLRF_GCP_PROJECTS, QLRF_GCP_ENDPOINT, credentials)."""
    return GcpDrillConfig(gcp=_gcp_from_env(environ(env)))


def _label(value: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in value.lower())[:63]


def _tail(url: str) -> str:
    return (url or "").rsplit("/", 1)[-1]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class GcpDrillDriver:
    platform = "gcp"

    def __init__(self, config: GcpDrillConfig | None = None):
        self.config = config or GcpDrillConfig()
        self._clients = ClientCache(self._make_client)
        self._credentials = None

    def _make_client(self, name: str) -> Any:
        from google.api_core.client_options import ClientOptions
        from google.cloud import compute_v1

        if self._credentials is None:
            self._credentials = make_credentials(self.config.gcp)
        endpoint = self.config.gcp.api_endpoint
        return getattr(compute_v1, name)(transport="rest", credentials=self._credentials,
                                         client_options=ClientOptions(api_endpoint=endpoint) if endpoint else None)

    def client(self, name: str) -> Any:
        return self._clients.get(name)

    def close(self) -> None:
        self._clients.clear()

    @staticmethod
    def _project(ctx: DrillContext, run: VmRun) -> str:
        return ctx.target.project or run.vm.account

    @staticmethod
    def _zone(target: Target) -> str:
        return target.zone or f"{target.region}-a"

    def _labels(self, ctx: DrillContext, run: VmRun) -> dict[str, str]:
        return {LABELS[TAG_DRILL]: _label(ctx.drill_id), LABELS[TAG_VM]: _label(run.vm.asset_id),
                LABELS[TAG_PLAN]: _label(ctx.plan.metadata.id),
                LABELS[TAG_STARTED]: ctx.started_at.astimezone(UTC).strftime("%Y%m%dt%H%M%Sz")}

    @staticmethod
    def _name(ctx: DrillContext, run: VmRun) -> str:
        drill = hashlib.sha256(ctx.drill_id.encode()).hexdigest()[:10]
        return f"qlrf-drill-{drill}-{hashlib.sha256(run.vm.asset_id.encode()).hexdigest()[:6]}"

    # -- locate -----------------------------------------------------------------------------------
    def locate(self, ctx: DrillContext, run: VmRun) -> RestorePoint:
        vm = run.vm
        if not vm.zone:
            raise DrillStepError(f"instance {vm.name} ({vm.asset_id}) has no zone in the inventory")
        inst = self.client("InstancesClient").get(project=vm.account, zone=vm.zone, instance=vm.name)
        boot = next((d.source for d in inst.disks if d.boot), None)
        if not boot:
            raise DrillStepError(f"instance {vm.name} has no boot disk to restore")
        snaps = [s for s in self.client("SnapshotsClient").list(project=vm.account)
                 if _tail(s.source_disk) == _tail(boot) and s.source_disk.split("/zones/")[-1] == boot.split("/zones/")[-1]
                 and s.status == "READY"]
        if not snaps:
            raise DrillStepError(f"no restore point: boot disk {_tail(boot)} of {vm.name} has no READY snapshot")
        newest = max(snaps, key=lambda s: (_time(s.creation_timestamp), s.name))
        run.state.update(machine_type=_tail(inst.machine_type), snapshot=newest.self_link)
        return RestorePoint(newest.name, _time(newest.creation_timestamp), "snapshot", {"disk": boot})

    # -- phases -----------------------------------------------------------------------------------
    def start(self, step: str, ctx: DrillContext, run: VmRun) -> bool:
        from google.cloud import compute_v1

        project, zone, name = self._project(ctx, run), self._zone(ctx.target), self._name(ctx, run)
        if step == "copy":
            return False
        if step == "provision":
            disk = compute_v1.Disk(name=name, source_snapshot=run.state["snapshot"], labels=self._labels(ctx, run))
            self.client("DisksClient").insert(project=project, zone=zone, disk_resource=disk)
            run.state["disk"] = name
            run.resources.append(Resource("disk", name, zone, run.vm.asset_id, ctx.drill_id, {"project": project}))
            return True
        if step == "launch":
            machine = ctx.target.instance_type or run.state.get("machine_type") or "e2-small"
            disk_url = f"projects/{project}/zones/{zone}/disks/{run.state['disk']}"
            network = ctx.target.network or "global/networks/default"
            instance = compute_v1.Instance(
                name=name, machine_type=f"zones/{zone}/machineTypes/{machine}", labels=self._labels(ctx, run),
                disks=[compute_v1.AttachedDisk(boot=True, auto_delete=True, source=disk_url)],
                network_interfaces=[compute_v1.NetworkInterface(network=network)])
            try:
                self.client("InstancesClient").insert(project=project, zone=zone, instance_resource=instance)
            except Exception as exc:
                if "quota" in str(exc).lower():
                    raise DrillStepError(f"no capacity in {zone} (quotaExceeded): {' '.join(str(exc).split())[:200]}") from exc
                raise
            run.state["instance"] = name
            run.resources.insert(0, Resource("instance", name, zone, run.vm.asset_id, ctx.drill_id, {"project": project}))
            return True
        return step == "verify"

    def ready(self, step: str, ctx: DrillContext, run: VmRun) -> bool:
        from google.api_core.exceptions import NotFound

        project, zone = self._project(ctx, run), self._zone(ctx.target)
        try:
            if step == "provision":
                disk = self.client("DisksClient").get(project=project, zone=zone, disk=run.state["disk"])
                if disk.status == "FAILED":
                    raise DrillStepError(f"disk {disk.name} FAILED")
                return disk.status == "READY"
            if step == "verify":
                inst = self.client("InstancesClient").get(project=project, zone=zone, instance=run.state["instance"])
                if inst.status in _DEAD:
                    raise DrillStepError(f"restored instance {inst.name} is {inst.status}, it will not become healthy")
                return inst.status == "RUNNING"
        except NotFound:
            return False  # the insert operation has not made it yet
        return True

    def check(self, name: str, ctx: DrillContext, run: VmRun) -> str | None:
        if "instance" not in run.state:
            return "no restored instance"
        inst = self.client("InstancesClient").get(project=self._project(ctx, run), zone=self._zone(ctx.target),
                                                  instance=run.state["instance"])
        if name in ("running", "status_checks"):
            return None if inst.status == "RUNNING" else f"instance {inst.name} is {inst.status}"
        if name == "tagged":
            return None if inst.labels.get(LABELS[TAG_DRILL]) == _label(ctx.drill_id) else "instance lacks label qlrf-drill"
        raise ValueError(f"unknown check {name!r}")

    def would_create(self, ctx: DrillContext, run: VmRun) -> list[str]:
        zone, name = self._zone(ctx.target), self._name(ctx, run)
        machine = ctx.target.instance_type or run.state.get("machine_type")
        return [f"disk: {name} in {zone} from snapshot {run.restore_point.id}, labelled qlrf-drill=<drill-id>",
                f"instance: {name} ({machine}) in {zone} booting that disk (deleted with it)"]

    # -- cleanup ----------------------------------------------------------------------------------
    def _projects(self, target: Target) -> list[str]:
        return [target.project] if target.project else list(self.config.gcp.projects)

    def leftovers(self, target: Target, keep_drill: str | None = None) -> list[Resource]:
        found = []
        key = LABELS[TAG_DRILL]
        for project in self._projects(target):
            for client, kind, attr in (("InstancesClient", "instance", "instances"), ("DisksClient", "disk", "disks")):
                for scope, page in self.client(client).aggregated_list(project=project):
                    if not scope.startswith(f"zones/{target.region}-"):
                        continue
                    for item in getattr(page, attr):
                        labels = dict(item.labels)
                        if key not in labels:
                            continue
                        started = labels.get(LABELS[TAG_STARTED])
                        detail = {"project": project, TAG_PLAN: labels.get(LABELS[TAG_PLAN]),
                                  TAG_STARTED: _started_iso(started)}
                        found.append(Resource(kind, item.name, _tail(item.zone), labels.get(LABELS[TAG_VM]), labels[key], detail))
        return [r for r in found if keep_drill is None or r.drill_id != _label(keep_drill)]

    def remove(self, resources: list[Resource]) -> list[dict[str, Any]]:
        from google.api_core.exceptions import NotFound

        done = []
        for r in sorted(resources, key=lambda x: x.kind != "instance"):  # instances first: their disks go with them
            entry = r.as_dict()
            project = (r.detail or {}).get("project")
            client, arg = ("InstancesClient", "instance") if r.kind == "instance" else ("DisksClient", "disk")
            try:
                self.client(client).delete(project=project, zone=r.region, **{arg: r.id})
                self._wait_gone(client, project, r.region, arg, r.id)
                entry["removed"] = True
            except NotFound:
                entry["removed"] = True  # gone already (a disk deleted with its instance)
            except Exception as exc:  # noqa: BLE001 - try every resource, report each
                entry["removed"], entry["error"] = False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            done.append(entry)
        return done

    def _wait_gone(self, client: str, project: str, zone: str, arg: str, name: str) -> None:
        """Poll the resource until GCE says it is gone (the operation's own client would need its own
        endpoint configuration; the resource's absence is what cleanup promises anyway)."""
        import time

        from google.api_core.exceptions import NotFound

        deadline = time.monotonic() + self.config.operation_timeout
        delay = 0.05
        while time.monotonic() < deadline:
            try:
                self.client(client).get(project=project, zone=zone, **{arg: name})
            except NotFound:
                return
            time.sleep(delay)
            delay = min(2.0, delay * 2)
        raise DrillStepError(f"{arg} {name} still exists {self.config.operation_timeout:g}s after its deletion")


def _started_iso(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y%m%dt%H%M%Sz").replace(tzinfo=UTC).isoformat()
    except ValueError:
        return None


__all__ = ["GcpDrillConfig", "GcpDrillDriver", "config_from_env"]
