"""Azure execution driver (azure-mgmt-compute): Uniform VM scale sets with a Manual upgrade policy.

- ``prepare``: finds each scale set by name in its subscription (and location), refuses Flexible
  orchestration and Automatic/Rolling upgrade policies (the platform would then roll the model out
  itself, past the plan's waves and health gates), and records the model's ``imageReference``.
- ``run_wave``: the first wave that touches a scale set patches its model to the golden image
  (``virtual_machine_scale_sets.begin_update``, a JSON merge patch that nulls the keys of the old
  reference the new one lacks, e.g. ``publisher/offer/sku/version`` when moving to a gallery
  ``id``); then the wave's share of instances not yet on it is upgraded,
  ``max_unavailable`` at a time (``begin_update_instances(instance_ids=...)``, i.e.
  ``POST .../manualupgrade``), each call waited for through the SDK's LRO poller.
- ``health``: every instance the plan upgraded must show ``latestModelApplied``, the golden
  ``imageReference``, ``ProvisioningState/succeeded`` and ``PowerState/running`` in its instance view
  (``virtual_machine_scale_set_vms.list(..., expand="instanceView")``); the set passes with
  ``min_healthy_percent`` of them.
- ``rollback``: the model goes back to the previous ``imageReference`` (or the plan's
  ``rollback.image_ref``), and the upgraded instances are upgraded again onto it.

Standalone Azure VMs are not handled here (the plan is refused in ``prepare``): see ``azure_vm.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from qlrf.envparse import environ
from qlrf.inventory.connectors.azure import AzureConfig, compute_client, make_credential
from qlrf.inventory.connectors.azure import config_from_env as _azure_from_env
from qlrf.remediation.calls import CallRecorder, CloudCall
from qlrf.remediation.drivers import DriverError, chunks, group_health, group_quota, groups_through
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.plans import PatchPlan

# imageReference keys that name an image (the others, e.g. exactVersion, are read-only)
_REF_KEYS = ("id", "publisher", "offer", "sku", "version", "sharedGalleryImageId", "communityGalleryImageId")


@dataclass
class AzureDriverConfig:
    azure: AzureConfig = field(default_factory=AzureConfig)
    credential: Any = field(default=None, repr=False)  # a TokenCredential; None: make_credential(azure)
    lro_polling_interval: float | None = None  # seconds between LRO polls; None: the SDK's (30 s / Retry-After)
    lro_timeout: float = 1800.0  # per model update / upgrade call


def config_from_env(env: Mapping[str, str] | None = None) -> AzureDriverConfig:
    """The discovery connector's variables (AZURE_*, QLRF_AZURE_ENDPOINT, QLRF_AZURE_CA_BUNDLE, ...) plus
    QLRF_AZURE_LRO_POLL_SECONDS. Read when called, never at import."""
    env = environ(env)
    config = AzureDriverConfig(azure=_azure_from_env(env))
    if env.get("QLRF_AZURE_LRO_POLL_SECONDS"):
        config.lro_polling_interval = float(env["QLRF_AZURE_LRO_POLL_SECONDS"])
    return config


def image_reference(ref: str) -> dict[str, str]:
    """An ARM imageReference from a plan's image_ref: a resource id, or a URN publisher:offer:sku:version."""
    if ref.startswith("/"):
        return {"id": ref}
    parts = ref.split(":")
    if len(parts) == 4 and all(parts):
        return dict(zip(("publisher", "offer", "sku", "version"), parts, strict=True))
    raise DriverError(f"{ref!r} is neither an Azure image resource id nor a URN publisher:offer:sku:version")


def same_image(actual: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """Every naming key of ``wanted`` equals ``actual``'s (case-insensitive, as ARM ids are)."""
    actual = actual or {}
    keys = [k for k in _REF_KEYS if wanted.get(k)]
    return bool(keys) and all(str(actual.get(k, "")).lower() == str(wanted[k]).lower() for k in keys)


def _merge_patch_ref(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    ref: dict[str, Any] = {k: None for k in _REF_KEYS if old.get(k) and k not in new}
    ref.update({k: v for k, v in new.items() if k in _REF_KEYS})
    return ref


def _statuses(vm: Mapping[str, Any]) -> list[str]:
    return [s.get("code", "") for s in vm.get("properties", {}).get("instanceView", {}).get("statuses", [])]


@dataclass
class _ScaleSet:
    subscription: str
    resource_group: str
    name: str
    previous_ref: dict[str, Any]
    rollback_ref: dict[str, Any]
    switched: bool = False
    upgraded: list[str] = field(default_factory=list)  # instance ids the plan moved to the golden image
    by_wave: dict[str, list[str]] = field(default_factory=dict)  # wave index -> instance ids it upgraded


class AzureDriver:
    def __init__(self, config: AzureDriverConfig | None = None, recorder: CallRecorder | None = None):
        self.config = config or AzureDriverConfig()
        self.recorder = recorder or CallRecorder()
        self._credential = self.config.credential
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.sets: dict[str, _ScaleSet] = {}
        self.golden: dict[str, str] = {}

    # -- state (qlrf.remediation.journal) ---------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """The scale sets' previous and rollback imageReferences and the instances upgraded, as JSON."""
        return {"golden": dict(self.golden), "sets": {n: asdict(s) for n, s in self.sets.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self.golden = dict(state["golden"])
        self.sets = {n: _ScaleSet(**s) for n, s in state["sets"].items()}

    def client(self, subscription: str) -> Any:
        with self._lock:
            if subscription not in self._clients:
                if self._credential is None:
                    self._credential = make_credential(self.config.azure)
                self._clients[subscription] = compute_client(self.config.azure, self._credential, subscription)
            return self._clients[subscription]

    def _lro_kwargs(self) -> dict[str, Any]:
        interval = self.config.lro_polling_interval
        return {} if interval is None else {"polling_interval": interval}

    def _wait(self, poller: Any, what: str) -> Any:
        result = poller.result(timeout=self.config.lro_timeout)
        if not poller.done():
            raise DriverError(f"{what}: not finished after {self.config.lro_timeout:g}s")
        return result

    # -- prepare ----------------------------------------------------------------------------------
    def prepare(self, plan: PatchPlan) -> dict[str, Any]:
        self.golden = image_reference(plan.spec.to_image.image_ref)
        if plan.spec.targets.instances:
            raise DriverError("standalone Azure VMs are not supported by the Azure driver (scale sets only)")
        details: dict[str, Any] = {}
        rollback = plan.spec.rollback
        for target in plan.spec.targets.groups:
            if target.platform != "azure" or target.kind != "vmss":
                raise DriverError(f"group {target.name!r}: the Azure driver handles kind vmss on azure")
            client = self.client(target.account)
            found = [
                s.as_dict()
                for s in client.virtual_machine_scale_sets.list_all()
                if s.name == target.name and (not target.region or str(s.location).lower() == target.region.lower())
            ]
            if len(found) != 1:
                raise DriverError(
                    f"scale set {target.name!r} in {target.region} of subscription {target.account}: "
                    f"{'not found' if not found else f'{len(found)} matches'}"
                )
            vmss = found[0]
            props = vmss.get("properties", {})
            if props.get("orchestrationMode", "Uniform") != "Uniform":
                raise DriverError(f"scale set {target.name!r} uses {props.get('orchestrationMode')} orchestration; "
                                  "manual instance upgrades need Uniform")
            mode = props.get("upgradePolicy", {}).get("mode", "Manual")
            if mode != "Manual":
                raise DriverError(f"scale set {target.name!r} has upgrade policy {mode}: the platform would roll the "
                                  "new model out past the plan's waves; set it to Manual")
            previous = dict(props.get("virtualMachineProfile", {}).get("storageProfile", {}).get("imageReference") or {})
            back = image_reference(rollback.image_ref) if rollback.strategy == "previous_image" and rollback.image_ref else previous
            rg = vmss["id"].split("/")[4]
            self.sets[target.name] = _ScaleSet(target.account, rg, target.name, previous, back)
            details[target.name] = {"id": vmss["id"], "previous_image": previous, "rollback_image": back,
                                    "capacity": vmss.get("sku", {}).get("capacity")}
        return details

    # -- waves ------------------------------------------------------------------------------------
    def _set_model(self, s: _ScaleSet, ref: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        body = {"properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": _merge_patch_ref(ref, current)}}}}
        sets = self.client(s.subscription).virtual_machine_scale_sets
        poller = self.recorder.send(
            CloudCall("azure", "virtualMachineScaleSets", "Update", s.name,
                      {"resourceGroup": s.resource_group, "imageReference": dict(ref)}),
            lambda: sets.begin_update(s.resource_group, s.name, body, **self._lro_kwargs()),
        )
        if poller is None:  # dry run: nothing sent, nothing to wait for
            return
        updated = self._wait(poller, f"model update of scale set {s.name}").as_dict()
        got = updated.get("properties", {}).get("virtualMachineProfile", {}).get("storageProfile", {}).get("imageReference")
        if not same_image(got, ref):
            raise DriverError(f"scale set {s.name}: model imageReference is {got}, expected {dict(ref)}")

    def _upgrade(self, s: _ScaleSet, ids: list[str]) -> None:
        sets = self.client(s.subscription).virtual_machine_scale_sets
        poller = self.recorder.send(
            CloudCall("azure", "virtualMachineScaleSets", "UpdateInstances", s.name,
                      {"resourceGroup": s.resource_group, "instanceIds": list(ids)}),
            lambda: sets.begin_update_instances(s.resource_group, s.name, {"instanceIds": ids}, **self._lro_kwargs()),
        )
        if poller is not None:
            self._wait(poller, f"upgrade of {s.name} instances {ids}")

    def _instances(self, s: _ScaleSet) -> list[dict[str, Any]]:
        vms = self.client(s.subscription).virtual_machine_scale_set_vms.list(s.resource_group, s.name, expand="instanceView")
        return sorted((vm.as_dict() for vm in vms), key=lambda v: int(v.get("instanceId", "0")))

    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        wave = plan.spec.waves[index]
        details: dict[str, Any] = {}
        for name in wave.groups:
            s = self.sets[name]
            if not s.switched:
                self._set_model(s, self.golden, s.previous_ref)
                s.switched = True
            vms = self._instances(s)
            done = s.by_wave.setdefault(str(index), [])  # a resumed wave: what it upgraded before the crash
            if not self.recorder.dry_run:  # noted but not on the golden model: its upgrade was never sent
                kept = {vm["instanceId"] for vm in vms if not _on_model(vm, self.golden)}
                done[:] = [i for i in done if i not in kept]
                s.upgraded = [i for i in s.upgraded if i not in kept]
            old = [
                vm["instanceId"]
                for vm in vms
                if vm["instanceId"] not in s.upgraded  # (a dry run's upgraded instances still show the old model)
                and not _on_model(vm, self.golden)
            ]
            quota = group_quota(plan, index, name)
            pick = old if quota is None else old[: max(0, quota - len(done))]
            calls = chunks(pick, plan.spec.max_unavailable)
            for chunk in calls:
                done += chunk  # noted before the call: a checkpoint taken during it already counts it
                s.upgraded += chunk
                self._upgrade(s, chunk)
            details[name] = {"upgraded": pick, "calls": len(calls), "image": self.golden}
        return details

    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        checked: dict[str, list[tuple[str, str | None]]] = {}
        for name in groups_through(plan, index):
            s = self.sets[name]
            by_id = {vm["instanceId"]: vm for vm in self._instances(s)}
            checked[name] = [(f"{name}/{iid}", _problem(by_id.get(iid), self.golden)) for iid in s.upgraded]
        return group_health(plan, checked, "upgraded")

    def members(self, plan: PatchPlan, index: int) -> tuple[list[str], list[str]]:
        """For canary analysis: (canary, baseline) ARM ids of the scale-set VMs (what Azure Monitor
        takes), on the golden image with the latest model or not."""
        changed: list[str] = []
        baseline: list[str] = []
        for s in self.sets.values():
            for vm in self._instances(s):
                props = vm.get("properties", {})
                on_golden = bool(props.get("latestModelApplied")) and same_image(
                    props.get("storageProfile", {}).get("imageReference"), self.golden)
                (changed if on_golden else baseline).append(vm["id"])
        return changed, baseline

    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        details: dict[str, Any] = {}
        errors: list[str] = []
        for name in groups_through(plan, max(waves_done)) if waves_done else []:
            s = self.sets.get(name)
            if s is None or not s.switched:
                continue
            try:
                self._set_model(s, s.rollback_ref, self.golden)
                calls = chunks(list(dict.fromkeys(s.upgraded)), plan.spec.max_unavailable)
                for chunk in calls:
                    self._upgrade(s, chunk)
                details[name] = {"image": s.rollback_ref, "reverted": list(dict.fromkeys(s.upgraded)), "calls": len(calls)}
            except Exception as exc:  # noqa: BLE001 - roll back the others, then report
                errors.append(f"scale set {name}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        if errors:
            raise DriverError("rollback incomplete: " + "; ".join(errors))
        return details


def _on_model(vm: Mapping[str, Any], golden: Mapping[str, Any]) -> bool:
    """The instance runs the latest model, and that model is the golden image."""
    props = vm.get("properties", {})
    return bool(props.get("latestModelApplied")) and same_image(props.get("storageProfile", {}).get("imageReference"), golden)


def _problem(vm: Mapping[str, Any] | None, golden: Mapping[str, Any]) -> str | None:
    if vm is None:
        return "instance gone"
    props = vm.get("properties", {})
    if not props.get("latestModelApplied"):
        return "latest model not applied"
    if not same_image(props.get("storageProfile", {}).get("imageReference"), golden):
        return "not on the golden image"
    codes = _statuses(vm)
    power = next((c for c in codes if c.startswith("PowerState/")), "PowerState/unknown")
    if power != "PowerState/running":
        return power
    prov = next((c for c in codes if c.startswith("ProvisioningState/")), "ProvisioningState/unknown")
    if prov != "ProvisioningState/succeeded":
        return prov
    return None


__all__ = ["AzureDriver", "AzureDriverConfig", "config_from_env", "image_reference", "same_image"]
