"""Azure, GCP and vSphere execution of ``apply_tags`` compliance plans (issue 12 item 6), through the real SDKs.

The AWS driver (:mod:`.aws_compliance`) set the contract; this module keeps it for the other two
clouds, so an ``apply_tags`` plan runs under the same gate, waves, health gate, rollback, journal
and audit whichever cloud its VMs live on:

- ``prepare`` reads every target's tags (Azure) or labels (GCP) and refuses a target that meanwhile
  got one of the planned keys with another value: a person's value is never overwritten.
- ``run_wave`` writes the VM's *whole* tag set (what it had plus the planned keys). Azure's PATCH
  replaces the ``tags`` object as a whole (ARM's rule for tags), GCE's ``setLabels`` does too and
  is guarded by the ``labelFingerprint`` read just before, so a concurrent change fails the call
  (412) instead of being lost.
- ``health``: every changed VM carries the planned tags.
- ``rollback`` removes exactly the keys the plan added, keeping anything else set since.
- ``checkpoint``/``restore``: what prepare read and which VMs a wave was about to change (marked
  *before* the call, as on AWS), so a killed run is rolled back or resumed from the journal.

GCE label values must be lower-case letters, digits, ``_`` and ``-`` (at most 63 characters):
a planned value that is not is refused in ``prepare`` by name rather than rewritten.

vSphere VMs carry their tags as custom attributes (what discovery reads):
:class:`VsphereComplianceDriver` sets them with ``CustomFieldsManager.SetField``.

``detach_public_ip`` on GCE (:class:`GcpDetachDriver`) detaches static external addresses only. It is
refused on Azure and vSphere with its reason: on Azure the public IP hangs off the NIC
(Microsoft.Network, whose SDK is not one of the product's packages); a vSphere VM's addresses belong
to its guest. The
plan can be approved and the VMs are named for a person; it is never half-executed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from qlrf.remediation.calls import CloudCall
from qlrf.remediation.drivers import DriverError
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.plans import PatchPlan

GCE_LABEL = re.compile(r"^[a-z0-9_-]{0,63}$")
GCE_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
NOT_DETACHABLE = {
    "azure": "an Azure public IP belongs to the VM's NIC (Microsoft.Network, not a product package): "
             "a person detaches it",
    "gcp": "an ephemeral external IP released by deleteAccessConfig cannot be restored by a rollback "
           "(only static addresses are detached): a person removes it",
    "vsphere": "a vSphere VM's addresses belong to its guest and port groups, not to an API the product "
               "changes: a person removes it",
}


class _TagDriver:
    """The cloud-independent half: read, plan, write, verify and undo a VM's tags."""

    platform = ""

    def __init__(self, base: Any):
        self.base = base  # the platform's group driver: clients, credential, recorder (dry runs)
        self.state: dict[str, dict[str, Any]] = {}  # asset id -> where it is, its tags, the keys added
        self.changed: list[str] = []

    @property
    def recorder(self) -> Any:  # a dry run reads and swaps the platform driver's recorder
        return self.base.recorder

    @recorder.setter
    def recorder(self, value: Any) -> None:
        self.base.recorder = value

    # -- the cloud half ---------------------------------------------------------------------------
    def _locate(self, target: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _read(self, st: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
        """(tags, extra state such as a fingerprint) as the cloud has them now."""
        raise NotImplementedError

    def _write(self, asset_id: str, st: Mapping[str, Any], tags: dict[str, str], extra: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _check_value(self, asset_id: str, key: str, value: str) -> None:
        return None

    # -- the executor's Driver protocol -----------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        return {"state": self.state, "changed": list(self.changed)}

    def restore(self, state: dict[str, Any]) -> None:
        self.state = {k: dict(v) for k, v in state["state"].items()}
        self.changed = list(state["changed"])

    def prepare(self, plan: PatchPlan) -> dict[str, Any]:
        change = plan.spec.compliance
        if change is None:
            raise DriverError(f"plan {plan.metadata.id} is not a compliance plan")
        if change.type != "apply_tags":
            names = ", ".join(t.name for t in plan.spec.targets.instances)
            raise DriverError(f"plan {plan.metadata.id}: detach_public_ip on {self.platform} is not executed: "
                              f"{NOT_DETACHABLE[self.platform]} ({names})")
        wanted = {t.asset_id: t.tags for t in change.tags}
        for target in plan.spec.targets.instances:
            if target.platform != self.platform:
                raise DriverError(f"instance {target.asset_id!r}: platform {target.platform} is not {self.platform}")
            for key, value in wanted.get(target.asset_id, {}).items():
                self._check_value(target.asset_id, key, value)
            entry = self._locate(target)
            tags, _ = self._read(entry)
            clash = {k: tags[k] for k, v in wanted.get(target.asset_id, {}).items() if k in tags and tags[k] != v}
            if clash:
                raise DriverError(f"{self.platform} VM {target.name} ({target.asset_id}): tag(s) {sorted(clash)} now "
                                  "hold other values: not overwriting a person's value (re-plan)")
            entry.update(tags=tags, added=sorted(k for k in wanted.get(target.asset_id, {}) if k not in tags))
            self.state[target.asset_id] = entry
        return {"targets": len(self.state), "type": change.type}

    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        change = plan.spec.compliance
        assert change is not None
        wanted = {t.asset_id: t.tags for t in change.tags}
        done = []
        for asset_id in plan.spec.waves[index].instances:
            st = self.state[asset_id]
            if asset_id not in self.changed:  # before the call: a journal checkpoint then covers it
                self.changed.append(asset_id)
            current, extra = self._read(st)
            clash = {k for k, v in wanted[asset_id].items() if k in current and current[k] != v}
            if clash:
                raise DriverError(f"{st['name']}: tag(s) {sorted(clash)} changed since prepare: not overwriting")
            self._write(asset_id, st, {**current, **wanted[asset_id]}, extra)
            done.append(asset_id)
        return {"changed": done}

    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        change = plan.spec.compliance
        assert change is not None
        wanted = {t.asset_id: t.tags for t in change.tags}
        ids = [a for w in plan.spec.waves[: index + 1] for a in w.instances]
        problems: dict[str, str] = {}
        for asset_id in ids:
            tags, _ = self._read(self.state[asset_id])
            missing = sorted(k for k, v in wanted[asset_id].items() if tags.get(k) != v)
            if missing:
                problems[asset_id] = f"planned tags missing: {', '.join(missing)}"
        return HealthReport(not problems, len(ids), len(ids) - len(problems), {"problems": problems})

    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        restored = []
        for asset_id in [a for a in self.changed if a in self.state]:
            st = self.state[asset_id]
            current, extra = self._read(st)
            if any(k in current for k in st.get("added", [])):
                kept = {k: v for k, v in current.items() if k not in st["added"]}
                self._write(asset_id, st, kept, extra)
            restored.append(asset_id)
        return {"restored": restored}


class AzureComplianceDriver(_TagDriver):
    """Tags of standalone Azure VMs through azure-mgmt-compute (``virtualMachines.Update``)."""

    platform = "azure"

    def _locate(self, target: Any) -> dict[str, Any]:
        client = self.base.client(target.account)
        hits = [v.as_dict() for v in client.virtual_machines.list_all()
                if str(v.vm_id or "").lower() == str(target.asset_id).lower()]
        if len(hits) != 1:
            raise DriverError(f"Azure VM {target.name} ({target.asset_id}) in subscription {target.account}: "
                              f"{'not found' if not hits else f'{len(hits)} matches'}")
        return {"subscription": target.account, "resource_group": hits[0]["id"].split("/")[4], "name": hits[0]["name"]}

    def _read(self, st: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
        vm = self.base.client(st["subscription"]).virtual_machines.get(st["resource_group"], st["name"])
        return dict(vm.tags or {}), {}

    def _write(self, asset_id: str, st: Mapping[str, Any], tags: dict[str, str], extra: Mapping[str, Any]) -> None:
        vms = self.base.client(st["subscription"]).virtual_machines
        call = CloudCall("azure", "virtualMachines", "Update", st["name"],
                         {"resourceGroup": st["resource_group"], "tags": dict(sorted(tags.items()))})
        poller = self.base.recorder.send(call, lambda: vms.begin_update(st["resource_group"], st["name"], {"tags": tags},
                                                                         **self.base._lro_kwargs()))
        if poller is not None:
            self.base._wait(poller, f"tagging {st['name']}")


class GcpComplianceDriver(_TagDriver):
    """Labels of standalone GCE instances through google-cloud-compute (``instances.setLabels``)."""

    platform = "gcp"

    def _check_value(self, asset_id: str, key: str, value: str) -> None:
        if not GCE_LABEL_KEY.match(key) or not GCE_LABEL.match(value):
            raise DriverError(f"instance {asset_id}: label {key}={value!r} is not a valid GCE label (lower-case "
                              "letters, digits, _ and -, at most 63): fix the tag default in policy/remediation.yaml")

    def _instances(self) -> Any:
        return self.base.client("InstancesClient")

    def _locate(self, target: Any) -> dict[str, Any]:
        from google.cloud import compute_v1

        request = compute_v1.AggregatedListInstancesRequest(project=target.account, filter=f'name = "{target.name}"')
        hits = [(scope, inst) for scope, scoped in self.base._call(self._instances().aggregated_list, request=request)
                if scope.startswith("zones/") for inst in scoped.instances
                if inst.name == target.name and str(inst.id) == str(target.asset_id)]
        if len(hits) != 1:
            raise DriverError(f"GCE instance {target.name!r} ({target.asset_id}) in {target.account}: "
                              f"{'not found' if not hits else f'{len(hits)} matches'}")
        return {"project": target.account, "zone": hits[0][0].rsplit("/", 1)[-1], "name": target.name}

    def _read(self, st: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
        inst = self.base._call(self._instances().get, project=st["project"], zone=st["zone"], instance=st["name"])
        return dict(inst.labels or {}), {"fingerprint": inst.label_fingerprint}

    def _write(self, asset_id: str, st: Mapping[str, Any], tags: dict[str, str], extra: Mapping[str, Any]) -> None:
        from google.cloud import compute_v1

        body = compute_v1.InstancesSetLabelsRequest(labels=tags, label_fingerprint=extra["fingerprint"])
        call = CloudCall("gcp", "instances", "SetLabels", f"{st['project']}/{st['zone']}/{st['name']}",
                         {"labels": dict(sorted(tags.items()))})
        op = self.base.recorder.send(call, lambda: self.base._call(
            self._instances().set_labels, project=st["project"], zone=st["zone"], instance=st["name"],
            instances_set_labels_request_resource=body))
        if op is not None:
            self.base._done(op, f"labelling {st['name']}")


class GcpDetachDriver:
    """``detach_public_ip`` on GCE: ``deleteAccessConfig`` of a NIC whose external IP is a *static* address.

    A static address stays reserved to the project when its access config is deleted, so a rollback
    (``addAccessConfig`` with the same ``natIP``, name and network tier) gives the VM the very same
    address. An ephemeral external IP is released for good by the delete: such a target is refused
    in ``prepare`` by name, as AWS refuses an auto-assigned public IP."""

    platform = "gcp"

    def __init__(self, base: Any):
        self.base = base
        self.state: dict[str, dict[str, Any]] = {}
        self.changed: list[str] = []

    @property
    def recorder(self) -> Any:
        return self.base.recorder

    @recorder.setter
    def recorder(self, value: Any) -> None:
        self.base.recorder = value

    def checkpoint(self) -> dict[str, Any]:
        return {"state": self.state, "changed": list(self.changed)}

    def restore(self, state: dict[str, Any]) -> None:
        self.state = {k: dict(v) for k, v in state["state"].items()}
        self.changed = list(state["changed"])

    def _instances(self) -> Any:
        return self.base.client("InstancesClient")

    def _get(self, st: Mapping[str, Any]) -> Any:
        return self.base._call(self._instances().get, project=st["project"], zone=st["zone"], instance=st["name"])

    def _static(self, project: str, address: str) -> bool:
        from google.cloud import compute_v1

        request = compute_v1.AggregatedListAddressesRequest(project=project, filter=f'address = "{address}"')
        client = self.base.client("AddressesClient")
        return any(a.address == address and a.address_type != "INTERNAL"
                   for _, scoped in self.base._call(client.aggregated_list, request=request)
                   for a in scoped.addresses)

    def prepare(self, plan: PatchPlan) -> dict[str, Any]:
        finder = GcpComplianceDriver(self.base)
        for target in plan.spec.targets.instances:
            st = finder._locate(target)
            inst = self._get(st)
            external = [(nic.name, ac) for nic in inst.network_interfaces for ac in nic.access_configs if ac.nat_i_p]
            if external:
                nic, ac = external[0]
                if not self._static(target.account, ac.nat_i_p):
                    raise DriverError(f"instance {target.name} ({target.asset_id}): external IP {ac.nat_i_p} is "
                                      f"ephemeral: {NOT_DETACHABLE['gcp']}")
                st.update(nic=nic, access_config=ac.name, nat_ip=ac.nat_i_p, tier=ac.network_tier or "PREMIUM")
            self.state[target.asset_id] = st
        return {"targets": len(self.state), "type": "detach_public_ip"}

    def _send(self, st: Mapping[str, Any], operation: str, params: dict[str, Any], call: Any, what: str) -> None:
        op = self.base.recorder.send(CloudCall("gcp", "instances", operation,
                                               f"{st['project']}/{st['zone']}/{st['name']}", params), call)
        if op is not None:
            self.base._done(op, what)

    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        done = []
        for asset_id in plan.spec.waves[index].instances:
            st = self.state[asset_id]
            if asset_id not in self.changed:  # before the call: a journal checkpoint then covers it
                self.changed.append(asset_id)
            if st.get("nat_ip"):
                self._send(st, "DeleteAccessConfig", {"networkInterface": st["nic"], "accessConfig": st["access_config"]},
                           lambda st=st: self.base._call(self._instances().delete_access_config, project=st["project"],
                                                         zone=st["zone"], instance=st["name"],
                                                         access_config=st["access_config"], network_interface=st["nic"]),
                           f"detaching {st['nat_ip']} from {st['name']}")
            done.append(asset_id)
        return {"changed": done}

    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        ids = [a for w in plan.spec.waves[: index + 1] for a in w.instances]
        problems: dict[str, str] = {}
        for asset_id in ids:
            inst = self._get(self.state[asset_id])
            left = [ac.nat_i_p for nic in inst.network_interfaces for ac in nic.access_configs if ac.nat_i_p]
            if inst.status != "RUNNING":
                problems[asset_id] = f"status {inst.status}"
            elif left:
                problems[asset_id] = f"still has external IP {left[0]}"
        return HealthReport(not problems, len(ids), len(ids) - len(problems), {"problems": problems})

    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        from google.cloud import compute_v1

        restored = []
        for asset_id in [a for a in self.changed if a in self.state]:
            st = self.state[asset_id]
            if not st.get("nat_ip"):
                continue
            inst = self._get(st)
            if any(ac.nat_i_p == st["nat_ip"] for nic in inst.network_interfaces for ac in nic.access_configs):
                restored.append(asset_id)  # the delete never landed
                continue
            config = compute_v1.AccessConfig(name=st["access_config"], nat_i_p=st["nat_ip"], type_="ONE_TO_ONE_NAT",
                                             network_tier=st["tier"])
            self._send(st, "AddAccessConfig", {"networkInterface": st["nic"], "natIP": st["nat_ip"]},
                       lambda st=st, config=config: self.base._call(
                           self._instances().add_access_config, project=st["project"], zone=st["zone"],
                           instance=st["name"], network_interface=st["nic"], access_config_resource=config),
                       f"re-attaching {st['nat_ip']} to {st['name']}")
            restored.append(asset_id)
        return {"restored": restored}


class VsphereComplianceDriver(_TagDriver):
    """Custom attributes of vSphere VMs through pyVmomi (``CustomFieldsManager.SetField``).

    Discovery reads a VM's tags from its custom attributes, so that is where the fix goes. A field
    the vCenter has no definition for is defined first (``AddCustomFieldDef`` for VirtualMachine,
    recorded like every call; a rollback leaves the definition, which changes no VM). vSphere cannot
    delete a VM's custom value: a rollback sets it to the empty string, which discovery and the
    compliance check treat as absent."""

    platform = "vsphere"

    def _si(self, st: Mapping[str, Any]) -> Any:
        return self.base.si(st["vcenter"])[1]

    def _vm(self, st: Mapping[str, Any]) -> Any:
        from pyVmomi import vim

        return vim.VirtualMachine(st["moid"], self._si(st)._stub)

    def _locate(self, target: Any) -> dict[str, Any]:
        label, si = self.base.si(target.account)
        vm = si.RetrieveContent().searchIndex.FindByUuid(None, target.asset_id, True, True)
        if vm is None:
            vm = self.base._find_by_name(si, target.name, template=False)
        if vm is None or vm.name != target.name:
            raise DriverError(f"vSphere VM {target.name!r} ({target.asset_id}) not found on vCenter {label}")
        return {"vcenter": label, "name": vm.name, "moid": vm._moId}

    def _fields(self, st: Mapping[str, Any]) -> tuple[Any, dict[int, str]]:
        cfm = self._si(st).RetrieveContent().customFieldsManager
        if cfm is None:
            raise DriverError(f"vCenter {st['vcenter']} has no custom fields manager: cannot tag {st['name']}")
        return cfm, {f.key: f.name for f in cfm.field or ()}

    def _read(self, st: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
        _, names = self._fields(st)
        values: dict[str, str] = {}
        for v in self._vm(st).customValue or ():  # the last value of a key wins
            values[names.get(v.key, str(v.key))] = getattr(v, "value", "") or ""
        return {k: v for k, v in values.items() if v != ""}, {}

    def _write(self, asset_id: str, st: Mapping[str, Any], tags: dict[str, str], extra: Mapping[str, Any]) -> None:
        from pyVmomi import vim

        current, _ = self._read(st)
        cfm, names = self._fields(st)
        keys = {name: key for key, name in names.items()}
        vm = self._vm(st)
        wanted = {k: v for k, v in tags.items() if current.get(k) != v}
        wanted.update({k: "" for k in current if k not in tags})  # removal: the empty value
        for name, value in sorted(wanted.items()):
            if name not in keys:
                made = self.base.recorder.send(
                    CloudCall("vsphere", "CustomFieldsManager", "AddCustomFieldDef", st["name"], {"field": name}),
                    lambda name=name: cfm.AddCustomFieldDef(name=name, moType=vim.VirtualMachine))
                if made is None:  # a dry run: nothing defined, nothing more to send for this field
                    continue
                keys[name] = made.key
            self.base.recorder.send(
                CloudCall("vsphere", "CustomFieldsManager", "SetField", st["name"], {"field": name, "value": value}),
                lambda name=name, value=value: cfm.SetField(entity=vm, key=keys[name], value=value))


def tag_driver(platform: str, platform_driver: Any, change_type: str = "apply_tags") -> Any:
    """The Azure / GCP / vSphere compliance driver around the platform's plan driver (its group part
    holds the plumbing on the clouds that have one)."""
    base = getattr(platform_driver, "groups", platform_driver)
    if platform == "gcp" and change_type == "detach_public_ip":
        return GcpDetachDriver(base)
    drivers = {"azure": AzureComplianceDriver, "gcp": GcpComplianceDriver, "vsphere": VsphereComplianceDriver}
    return drivers[platform](base)


__all__ = ["NOT_DETACHABLE", "AzureComplianceDriver", "GcpComplianceDriver", "GcpDetachDriver",
           "VsphereComplianceDriver", "tag_driver"]
