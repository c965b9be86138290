"""GCP standalone instances (google-cloud-compute, REST): swap the boot disk for one built from the golden image.

Why a boot-disk swap and not a re-create from the saved ``instances.insert`` body: the instance
keeps its id, name, internal/external IPs, service account, labels, metadata, attached data disks
and every IAM binding on it, and the old boot disk is kept whole, so a rollback is the same swap
back onto bytes that never changed. Re-creating would give a new instance id (what discovery keys
on) and lose ephemeral IPs.

Targets: ``asset_id`` = the instance id, ``account`` = the project, ``region`` = its region (the
zone is found with ``instances.aggregatedList`` filtered on the name, checked against the id).

- ``prepare``: finds every instance and its boot disk (device name, ``autoDelete``, size, type);
  creates nothing.
- ``run_wave``, ``max_unavailable`` at a time: ``disks.insert`` ``<name>-q<plan hash>`` from the
  golden image (same size and type as the old boot disk; an existing one with that name and
  image is reused, so a resumed wave does not fail), ``instances.stop``,
  ``instances.detachDisk`` (the old boot disk, kept), ``instances.attachDisk`` (the new one as
  boot, same device name and ``autoDelete``), ``instances.start`` (if it was running). Every
  operation is waited for through the zone operations API.
- ``health``: the instance is ``RUNNING`` (or still ``TERMINATED`` if it was stopped before the
  plan), its boot disk is the new disk, and that disk's ``sourceImage`` is the golden image.
- ``rollback``: reads each touched instance back from the API (never trusts memory alone, so it
  works from a checkpoint after a crash): if the new disk is its boot disk it is stopped and the
  old disk attached back as boot; a half-done swap (no boot disk) gets the old disk; then it is
  started if it was running and the new disk is deleted.

``checkpoint()``/``restore()`` carry every identifier rollback needs (JSON).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from qlrf.remediation.calls import CallRecorder, CloudCall
from qlrf.remediation.drivers import DriverError, chunks, instances_through
from qlrf.remediation.drivers.gcp import GcpDriver, GcpDriverConfig, config_from_env, image_url
from qlrf.remediation.drivers.split import OnBase, SplitDriver, standalone_health, undo_each
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.plans import PatchPlan

KIND = "instance"


def _tail(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _path(url: str) -> str:
    return url.split("/compute/v1/", 1)[-1].strip("/")


@dataclass
class _Swap:
    asset_id: str
    project: str
    zone: str
    name: str
    old_disk: str  # the boot disk before the plan (URL); kept detached after the swap
    device_name: str
    auto_delete: bool
    size_gb: int
    disk_type: str
    was_running: bool
    new_disk: str = ""  # URL of the disk built from the golden image
    touched: bool = False  # a mutating call was made on the instance


class GcpInstanceDriver(OnBase):
    """Executes one plan's standalone GCE instances; see the module docstring."""

    def __init__(self, config: GcpDriverConfig | None = None, recorder: CallRecorder | None = None,
                 base: GcpDriver | None = None):
        self.base = base or GcpDriver(config, recorder)  # clients, retries and the operation wait
        self.swaps: dict[str, _Swap] = {}
        self.golden = ""

    def _instances(self) -> Any:
        return self.base.client("InstancesClient")

    def _disks(self) -> Any:
        return self.base.client("DisksClient")

    def _send(self, operation: str, s: _Swap, params: dict[str, Any], call: Any, what: str,
              service: str = "instances") -> None:
        op = self.recorder.send(CloudCall("gcp", service, operation, f"{s.project}/{s.zone}/{s.name}", params), call)
        if op is not None:
            self.base._done(op, what)

    # -- prepare ----------------------------------------------------------------------------------
    def prepare(self, plan: PatchPlan) -> dict[str, Any]:
        self.golden = image_url(plan.spec.to_image.image_ref)
        digest = (plan.content_hash or plan.compute_hash())[7:15]
        details: dict[str, Any] = {}
        for target in plan.spec.targets.instances:
            if target.platform != "gcp":
                raise DriverError(f"instance {target.asset_id!r}: platform {target.platform} is not gcp")
            inst = self._find(target.account, target.region, target.name, target.asset_id)
            zone = _tail(inst.zone)
            boot = next((d for d in inst.disks if d.boot), None)
            if boot is None:
                raise DriverError(f"instance {target.name} ({target.asset_id}) has no boot disk")
            disk = self.base._call(self._disks().get, project=target.account, zone=zone, disk=_tail(boot.source))
            s = _Swap(target.asset_id, target.account, zone, inst.name, boot.source, boot.device_name,
                      bool(boot.auto_delete), int(disk.size_gb or 10), disk.type_ or "",
                      inst.status == "RUNNING")
            s.new_disk = f"{boot.source.rsplit('/disks/', 1)[0]}/disks/{inst.name[:50].rstrip('-')}-q{digest}"
            self.swaps[target.asset_id] = s
            details[target.asset_id] = {"kind": KIND, "name": s.name, "zone": zone, "old_boot_disk": s.old_disk,
                                        "new_boot_disk": s.new_disk, "status": inst.status,
                                        "old_image": disk.source_image}
        return details

    def _find(self, project: str, region: str, name: str, asset_id: str) -> Any:
        from google.cloud import compute_v1

        request = compute_v1.AggregatedListInstancesRequest(project=project, filter=f'name = "{name}"')
        hits = [
            inst
            for scope, scoped in self.base._call(self._instances().aggregated_list, request=request)
            if scope.startswith("zones/") and _tail(scope).rsplit("-", 1)[0] == region
            for inst in scoped.instances
            if inst.name == name
        ]
        by_id = [i for i in hits if str(i.id) == str(asset_id)]
        found = by_id or (hits if len(hits) == 1 and not str(asset_id).isdigit() else [])
        if len(found) != 1:
            raise DriverError(f"GCE instance {name!r} ({asset_id}) in {project}/{region}: "
                              f"{'not found' if not found else f'{len(found)} matches'}")
        return found[0]

    # -- waves ------------------------------------------------------------------------------------
    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        details: dict[str, Any] = {}
        for chunk in chunks(plan.spec.waves[index].instances, plan.spec.max_unavailable):
            swaps = [self.swaps[a] for a in chunk]
            for s in swaps:
                self._create_disk(s)
            for s in swaps:
                self._swap(s)
                details[s.asset_id] = {"kind": KIND, "name": s.name, "boot_disk": _tail(s.new_disk),
                                       "kept_disk": _tail(s.old_disk)}
        return details

    def _create_disk(self, s: _Swap) -> None:
        from google.api_core import exceptions as gexc
        from google.cloud import compute_v1

        body = compute_v1.Disk(name=_tail(s.new_disk), source_image=self.golden, size_gb=s.size_gb,
                               type_=s.disk_type or None)
        s.touched = True
        try:
            self._send("insert", s, {"disk": _tail(s.new_disk), "sourceImage": self.golden},
                       lambda: self.base._call(self._disks().insert, project=s.project, zone=s.zone, disk_resource=body),
                       f"creating disk {_tail(s.new_disk)}", service="disks")
        except gexc.Conflict:  # made by an earlier, interrupted run of this plan: reuse it if it is ours
            disk = self.base._call(self._disks().get, project=s.project, zone=s.zone, disk=_tail(s.new_disk))
            if _path(disk.source_image) != _path(self.golden):
                raise DriverError(f"disk {_tail(s.new_disk)} exists with another image ({disk.source_image})") from None

    def _swap(self, s: _Swap) -> None:
        where = {"project": s.project, "zone": s.zone, "instance": s.name}
        client = self._instances()
        self._send("stop", s, {}, lambda: self.base._call(client.stop, **where), f"stopping {s.name}")
        self._send("detachDisk", s, {"deviceName": s.device_name, "disk": _tail(s.old_disk)},
                   lambda: self.base._call(client.detach_disk, device_name=s.device_name, **where),
                   f"detaching the boot disk of {s.name}")
        self._attach_boot(s, s.new_disk)
        if s.was_running:
            self._send("start", s, {}, lambda: self.base._call(client.start, **where), f"starting {s.name}")

    def _attach_boot(self, s: _Swap, disk: str) -> None:
        from google.cloud import compute_v1

        attached = compute_v1.AttachedDisk(source=disk, boot=True, device_name=s.device_name, auto_delete=s.auto_delete)
        self._send("attachDisk", s, {"disk": _tail(disk), "boot": True, "deviceName": s.device_name},
                   lambda: self.base._call(self._instances().attach_disk, project=s.project, zone=s.zone,
                                           instance=s.name, attached_disk_resource=attached),
                   f"attaching {_tail(disk)} to {s.name} as its boot disk")

    # -- health -----------------------------------------------------------------------------------
    def members(self, plan: PatchPlan, index: int) -> tuple[list[str], list[str]]:
        """For canary analysis: (canary, baseline) instance ids (a boot-disk swap keeps the instance and its id): the VMs of waves 0..index
        against those of later waves."""
        done = set(instances_through(plan, index))
        changed = [r.asset_id for a, r in self.swaps.items() if a in done and r.touched]
        baseline = [r.asset_id for a, r in self.swaps.items() if a not in done]
        return changed, baseline

    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        return standalone_health(plan, index, lambda asset: (self.swaps[asset].name, self._problem(self.swaps[asset])))

    def _problem(self, s: _Swap) -> str | None:
        inst = self.base._call(self._instances().get, project=s.project, zone=s.zone, instance=s.name)
        wanted = "RUNNING" if s.was_running else "TERMINATED"
        if inst.status != wanted:
            return f"status {inst.status or 'unknown'}"
        boot = next((d for d in inst.disks if d.boot), None)
        if boot is None or _path(boot.source) != _path(s.new_disk):
            return f"boot disk {_tail(boot.source) if boot else 'missing'}"
        disk = self.base._call(self._disks().get, project=s.project, zone=s.zone, disk=_tail(s.new_disk))
        if _path(disk.source_image) != _path(self.golden):
            return f"boot image {_tail(disk.source_image)}"
        return None

    # -- rollback ---------------------------------------------------------------------------------
    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        def pick(asset: str) -> _Swap | None:
            s = self.swaps.get(asset)
            return s if s is not None and s.touched else None

        return undo_each(plan, waves_done, pick, self._restore_one, lambda s: f"instance {s.name}")

    def _restore_one(self, s: _Swap) -> dict[str, Any]:
        from google.api_core import exceptions as gexc

        where = {"project": s.project, "zone": s.zone, "instance": s.name}
        client = self._instances()
        inst = self.base._call(client.get, **where)
        boot = next((d for d in inst.disks if d.boot), None)
        done: list[str] = []
        if boot is None or _path(boot.source) != _path(s.old_disk):
            if inst.status not in ("TERMINATED", "STOPPED"):
                self._send("stop", s, {}, lambda: self.base._call(client.stop, **where), f"stopping {s.name}")
                done.append("stopped")
            if boot is not None:
                self._send("detachDisk", s, {"deviceName": boot.device_name, "disk": _tail(boot.source)},
                           lambda: self.base._call(client.detach_disk, device_name=boot.device_name, **where),
                           f"detaching {_tail(boot.source)} from {s.name}")
                done.append(f"detached {_tail(boot.source)}")
            self._attach_boot(s, s.old_disk)
            done.append(f"attached {_tail(s.old_disk)}")
        if s.was_running and (done or inst.status != "RUNNING"):
            self._send("start", s, {}, lambda: self.base._call(client.start, **where), f"starting {s.name}")
            done.append("started")
        try:
            self._send("delete", s, {"disk": _tail(s.new_disk)},
                       lambda: self.base._call(self._disks().delete, project=s.project, zone=s.zone,
                                               disk=_tail(s.new_disk)),
                       f"deleting disk {_tail(s.new_disk)}", service="disks")
            done.append(f"deleted {_tail(s.new_disk)}")
        except gexc.NotFound:
            pass  # never created (the wave stopped before the insert)
        return {"name": s.name, "boot_disk": _tail(s.old_disk), "steps": done}

    # -- the journal's state protocol -------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        return {"kind": KIND, "golden": self.golden, "swaps": {a: asdict(s) for a, s in self.swaps.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self.golden = state["golden"]
        self.swaps = {a: _Swap(**s) for a, s in state["swaps"].items()}


class GcpPlanDriver(SplitDriver):
    """The registry's GCP driver: MIGs (zonal and regional) through :class:`GcpDriver`, standalone
    instances through :class:`GcpInstanceDriver`, sharing clients and the recorder."""

    def __init__(self, config: GcpDriverConfig | None = None, recorder: CallRecorder | None = None):
        migs = GcpDriver(config, recorder)
        super().__init__(migs, GcpInstanceDriver(base=migs))


__all__ = ["KIND", "GcpInstanceDriver", "GcpPlanDriver", "config_from_env"]
