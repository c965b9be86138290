"""Azure drill driver (azure-mgmt-compute): snapshot -> copy in the paired location -> managed disk -> VM.

- ``locate``: the VM (by its ``vmId``, the inventory's asset id, among the subscription's VMs), its OS
  disk, and the newest snapshot whose ``creationData.sourceResourceId`` is that disk.
- ``copy``: a snapshot in the plan's resource group and paired location (``createOption: CopyStart``
  from the source snapshot), tagged.
- ``provision``: a managed disk from the copy (``createOption: Copy``), tagged.
- ``launch``: a VM attaching that disk as its OS disk (``createOption: Attach``), the source's size
  (or the plan's), tagged. A 409 ``QuotaExceeded``/``OperationNotAllowed`` naming a quota is the DR
  region's quota: failed at ``launch`` naming it. (The VM's network interface is the plan's
  ``target.network``: a NIC resource id in the paired location; Microsoft.Network is not created here.)
- ``verify``: instance view ``PowerState/running`` and ``ProvisioningState/succeeded``;
  ``PowerState/stopped``/``deallocated`` will not get better.
- ``leftovers``: VMs, disks and snapshots tagged ``qlrf:drill`` in the plan's resource group;
  ``remove``: VMs, then disks, then snapshots (each delete waited for).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from qlrf.dr.drivers import (
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
from qlrf.inventory.connectors.azure import AzureConfig, compute_client, make_credential
from qlrf.inventory.connectors.azure import config_from_env as _azure_from_env

_DEAD = ("PowerState/stopped", "PowerState/deallocated", "PowerState/deallocating", "PowerState/stopping")


@dataclass
class AzureDrillConfig:
    azure: AzureConfig = field(default_factory=AzureConfig)
    credential: Any = field(default=None, repr=False)  # a TokenCredential; None: make_credential(azure)
    lro_polling_interval: float | None = None
    lro_timeout: float = 1800.0


def config_from_env(env: Mapping[str, str] | None = None) -> AzureDrillConfig:
    """The discovery connector's variables (AZURE_*, QLRF_AZURE_ENDPOINT, ...); read when called."""
    return AzureDrillConfig(azure=_azure_from_env(environ(env)))


def _rg(resource_id: str) -> str:
    parts = resource_id.split("/")
    return parts[parts.index("resourceGroups") + 1] if "resourceGroups" in parts else parts[4]


class AzureDrillDriver:
    platform = "azure"

    def __init__(self, config: AzureDrillConfig | None = None):
        self.config = config or AzureDrillConfig()
        self._credential = self.config.credential
        self._clients = ClientCache(self._make_client)

    def _make_client(self, subscription: str) -> Any:
        if self._credential is None:
            self._credential = make_credential(self.config.azure)
        return compute_client(self.config.azure, self._credential, subscription)

    def client(self, subscription: str) -> Any:
        return self._clients.get(subscription)

    def close(self) -> None:
        self._clients.clear()

    def _lro(self) -> dict[str, Any]:
        interval = self.config.lro_polling_interval
        return {} if interval is None else {"polling_interval": interval}

    @staticmethod
    def _group(target: Target) -> str:
        if not target.resource_group:
            raise DrillStepError("an Azure drill needs spec.target.resource_group (where the restored resources go)")
        return target.resource_group

    @staticmethod
    def _name(ctx: DrillContext, run: VmRun, kind: str) -> str:
        return f"{ctx.resource_name(run.vm)}-{kind}"[:80]

    # -- locate -----------------------------------------------------------------------------------
    def locate(self, ctx: DrillContext, run: VmRun) -> RestorePoint:
        vm, compute = run.vm, self.client(run.vm.account)
        source = next((v for v in compute.virtual_machines.list_all() if v.vm_id == vm.asset_id), None)
        if source is None:
            raise DrillStepError(f"VM {vm.name} ({vm.asset_id}) not found in subscription {vm.account}")
        disk_id = source.storage_profile.os_disk.managed_disk.id
        snaps = [s for s in compute.snapshots.list() if s.creation_data and
                 (s.creation_data.source_resource_id or "").lower() == disk_id.lower()]
        if not snaps:
            raise DrillStepError(f"no restore point: OS disk {disk_id.rsplit('/', 1)[-1]} of {vm.name} has no snapshot")
        newest = max(snaps, key=lambda s: (s.time_created, s.name))
        run.state.update(size=source.hardware_profile.vm_size, os_type=source.storage_profile.os_disk.os_type,
                         snapshot=newest.id)
        return RestorePoint(newest.name, newest.time_created.astimezone(UTC), "snapshot", {"disk": disk_id})

    # -- phases -----------------------------------------------------------------------------------
    def start(self, step: str, ctx: DrillContext, run: VmRun) -> bool:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.compute import models

        if step == "verify":
            return True
        compute, target, group = self.client(run.vm.account), ctx.target, self._group(ctx.target)
        tags = ctx.tags(run.vm)
        if step == "copy":
            name = self._name(ctx, run, "snap")
            body = models.Snapshot(location=target.region, tags=tags, creation_data=models.CreationData(
                create_option="CopyStart", source_resource_id=run.state["snapshot"]))
            run.resources.append(Resource("snapshot", name, group, run.vm.asset_id, ctx.drill_id, {"subscription": run.vm.account}))
            run.state["copy"] = self._wait(compute.snapshots.begin_create_or_update(group, name, body, **self._lro())).id
            return True
        if step == "provision":
            name = self._name(ctx, run, "disk")
            body = models.Disk(location=target.region, tags=tags, creation_data=models.CreationData(
                create_option="Copy", source_resource_id=run.state["copy"]))
            run.resources.append(Resource("disk", name, group, run.vm.asset_id, ctx.drill_id, {"subscription": run.vm.account}))
            run.state["disk"] = self._wait(compute.disks.begin_create_or_update(group, name, body, **self._lro())).id
            return True
        if step == "launch":
            name = self._name(ctx, run, "vm")
            body = models.VirtualMachine(
                location=target.region, tags=tags,
                hardware_profile=models.HardwareProfile(vm_size=target.instance_type or run.state.get("size")),
                storage_profile=models.StorageProfile(os_disk=models.OSDisk(
                    create_option="Attach", os_type=run.state.get("os_type"),
                    managed_disk=models.ManagedDiskParameters(id=run.state["disk"]))),
                network_profile=models.NetworkProfile(network_interfaces=[
                    models.NetworkInterfaceReference(id=target.network)]) if target.network else None)
            try:
                poller = compute.virtual_machines.begin_create_or_update(group, name, body, **self._lro())
            except HttpResponseError as exc:
                code = getattr(exc.error, "code", None) or ""
                if "quota" in f"{code} {exc.message}".lower():
                    raise DrillStepError(f"no capacity in {target.region} ({code or 'quota'}): "
                                         f"{' '.join(str(exc.message).split())[:200]}") from exc
                raise
            run.resources.insert(0, Resource("vm", name, group, run.vm.asset_id, ctx.drill_id, {"subscription": run.vm.account}))
            run.state["vm"] = name
            self._wait(poller)
            return True
        return False

    def _wait(self, poller: Any) -> Any:
        result = poller.result(timeout=self.config.lro_timeout)
        if not poller.done():
            raise DrillStepError(f"not finished after {self.config.lro_timeout:g}s")
        return result

    def _statuses(self, ctx: DrillContext, run: VmRun) -> list[str]:
        view = self.client(run.vm.account).virtual_machines.instance_view(self._group(ctx.target), run.state["vm"])
        return [s.code for s in view.statuses or ()]

    def ready(self, step: str, ctx: DrillContext, run: VmRun) -> bool:
        if step != "verify":
            return True
        codes = self._statuses(ctx, run)
        dead = [c for c in codes if c in _DEAD]
        if dead:
            raise DrillStepError(f"restored VM {run.state['vm']} is {dead[0]}, it will not become healthy")
        return "PowerState/running" in codes and "ProvisioningState/succeeded" in codes

    def check(self, name: str, ctx: DrillContext, run: VmRun) -> str | None:
        if "vm" not in run.state:
            return "no restored VM"
        if name in ("running", "status_checks"):
            codes = self._statuses(ctx, run)
            ok = "PowerState/running" in codes and (name == "running" or "ProvisioningState/succeeded" in codes)
            return None if ok else f"VM {run.state['vm']} statuses {codes}"
        if name == "tagged":
            vm = self.client(run.vm.account).virtual_machines.get(self._group(ctx.target), run.state["vm"])
            return None if (vm.tags or {}).get(TAG_DRILL) == ctx.drill_id else f"VM lacks {TAG_DRILL}={ctx.drill_id}"
        raise ValueError(f"unknown check {name!r}")

    def would_create(self, ctx: DrillContext, run: VmRun) -> list[str]:
        t = ctx.target
        return [f"snapshot: {self._name(ctx, run, 'snap')}, a copy of {run.restore_point.id} in {t.region} "
                f"(resource group {t.resource_group}), tagged {TAG_DRILL}=<drill-id>",
                f"disk: {self._name(ctx, run, 'disk')} from that copy",
                f"vm: {self._name(ctx, run, 'vm')} ({t.instance_type or run.state.get('size')}) attaching that disk"]

    # -- cleanup ----------------------------------------------------------------------------------
    def leftovers(self, target: Target, keep_drill: str | None = None) -> list[Resource]:
        group = self._group(target)
        found = []
        for sub in self.config.azure.subscriptions or self._clients.keys():
            compute = self.client(sub)
            for kind, items in (("vm", compute.virtual_machines.list(group)), ("disk", compute.disks.list_by_resource_group(group)),
                                ("snapshot", compute.snapshots.list_by_resource_group(group))):
                for item in items:
                    tags = dict(item.tags or {})
                    if TAG_DRILL in tags:
                        found.append(Resource(kind, item.name, group, tags.get(TAG_VM), tags[TAG_DRILL],
                                              {**tags, "subscription": sub}))
        return [r for r in found if keep_drill is None or r.drill_id != keep_drill]

    def remove(self, resources: list[Resource]) -> list[dict[str, Any]]:
        from azure.core.exceptions import ResourceNotFoundError

        order = {"vm": 0, "disk": 1, "snapshot": 2}
        done = []
        for r in sorted(resources, key=lambda x: order.get(x.kind, 9)):
            entry = r.as_dict()
            compute = self.client((r.detail or {})["subscription"])
            ops = {"vm": compute.virtual_machines, "disk": compute.disks, "snapshot": compute.snapshots}
            try:
                self._wait(ops[r.kind].begin_delete(r.region, r.id, **self._lro()))
                entry["removed"] = True
            except ResourceNotFoundError:
                entry["removed"] = True
            except Exception as exc:  # noqa: BLE001 - try every resource, report each
                entry["removed"], entry["error"] = False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            done.append(entry)
        return done


__all__ = ["AzureDrillConfig", "AzureDrillDriver", "config_from_env"]
