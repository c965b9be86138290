"""vSphere VMs inside a DRS cluster (pyVmomi): clone-and-swap that keeps the VM's place in the cluster's rules.

The clone-and-swap of :mod:`qlrf.remediation.drivers.vsphere` gives a *new* VM object; in a DRS
cluster the old VM's membership of VM groups, affinity/anti-affinity rules and its per-VM DRS
override would stay with the old, powered-off VM and the clone would escape them (a database
pair's anti-affinity silently lost; a licence-bound VM-host "must" rule broken). So, for a VM
whose resource pool belongs to a ``ClusterComputeResource``:

- ``prepare`` records the cluster, the VM's effective DRS automation level (its per-VM override
  when enabled, else the cluster's ``defaultVmBehavior``; ``fullyAutomated`` when unset, as
  vCenter defaults), its host, the VM groups and affinity/anti-affinity rules naming it, the
  VM-host rules over those groups, and its override.
- placement: the clone goes into the VM's resource pool. DRS places it (fully or partially
  automated clusters do initial placement) unless placement must be pinned: a ``manual`` level
  (vCenter would only *recommend* a host and the power-on would wait for a person) or a mandatory
  VM-host rule (the clone is not in the rule's group until the swap). Pinned clones get the old
  VM's host (or, if that host is outside the rule's host group, the group's first host) in the
  clone spec, and are moved there with ``RelocateVM_Task`` if they landed elsewhere.
- after the swap, one ``ReconfigureComputeResource_Task`` puts the clone in the old VM's place:
  every VM group and affinity/anti-affinity rule lists the clone instead of the old VM, and the
  clone gets the old VM's per-VM override.
- ``health`` also checks that the clone holds that place (groups, rules, the VM-host rule's hosts).
- ``rollback`` first gives the place back to the old VM (and drops the clone's override), then
  undoes the swap as the base driver does.

VMs outside a cluster are handled exactly as before. ``checkpoint()``/``restore()`` carry the swap
and the DRS state by managed-object id (JSON), so a fresh driver can roll back after a crash.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from qlrf.remediation.calls import CloudCall
from qlrf.remediation.drivers import DriverError
from qlrf.remediation.drivers.vsphere import VsphereDriver, VsphereDriverConfig, _Swap, config_from_env
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.plans import PatchPlan

KIND = "drs_clone_swap"
DEFAULT_BEHAVIOR = "fullyAutomated"


@dataclass
class DrsPlace:
    """The old VM's place in its DRS cluster (managed-object ids and names: JSON as it is)."""

    cluster: str
    automation: str
    host: str
    groups: list[str] = field(default_factory=list)  # VM groups naming the VM
    rules: list[str] = field(default_factory=list)  # affinity / anti-affinity rules naming the VM
    host_rules: list[str] = field(default_factory=list)  # VM-host rules over those groups
    must_hosts: list[str] = field(default_factory=list)  # hosts a mandatory VM-host rule allows
    override: dict[str, Any] | None = None  # the VM's per-VM DRS override (enabled, behavior)
    pin_host: str | None = None  # where the clone must start, when DRS must not place it
    pin_reason: str = ""
    adopted: bool = False  # the clone holds the place (groups, rules, override)


def _moid(obj: Any) -> str:
    return obj._moId


def _members(obj: Any) -> list[str]:
    return [_moid(v) for v in getattr(obj, "vm", None) or []]


def read_place(vm: Any) -> DrsPlace | None:
    """The VM's place in its DRS cluster, or None when it is not in a cluster with DRS on."""
    from pyVmomi import vim

    owner = getattr(vm.resourcePool, "owner", None)
    if not isinstance(owner, vim.ClusterComputeResource):
        return None
    config = owner.configurationEx
    drs = config.drsConfig
    if drs is not None and drs.enabled is False:
        return None
    vm_id = _moid(vm)
    override = next((o for o in config.drsVmConfig or [] if _moid(o.key) == vm_id), None)
    automation = (drs.defaultVmBehavior if drs is not None else None) or DEFAULT_BEHAVIOR
    if override is not None and override.enabled is not False and override.behavior:
        automation = override.behavior
    place = DrsPlace(_moid(owner), str(automation), _moid(vm.runtime.host) if vm.runtime.host else "")
    if override is not None:
        place.override = {"enabled": override.enabled, "behavior": override.behavior}
    vm_groups = {g.name: g for g in config.group or [] if isinstance(g, vim.cluster.VmGroup)}
    host_groups = {g.name: g for g in config.group or [] if isinstance(g, vim.cluster.HostGroup)}
    place.groups = sorted(name for name, g in vm_groups.items() if vm_id in _members(g))
    for rule in config.rule or []:
        if isinstance(rule, vim.cluster.VmHostRuleInfo):
            if rule.vmGroupName in place.groups:
                place.host_rules.append(rule.name)
                if rule.mandatory and rule.affineHostGroupName in host_groups:
                    allowed = [_moid(h) for h in host_groups[rule.affineHostGroupName].host or []]
                    place.must_hosts = sorted(set(place.must_hosts) & set(allowed)) if place.must_hosts else allowed
        elif vm_id in _members(rule):
            place.rules.append(rule.name)
    if place.must_hosts:
        place.pin_host = place.host if place.host in place.must_hosts else place.must_hosts[0]
        place.pin_reason = f"mandatory VM-host rule {', '.join(place.host_rules)}"
    elif place.automation == "manual":
        place.pin_host = place.host
        place.pin_reason = "DRS automation manual: vCenter would only recommend a host"
    return place


class VsphereDrsDriver(VsphereDriver):
    """Clone-and-swap that keeps a VM's place in its DRS cluster; see the module docstring."""

    def __init__(self, config: VsphereDriverConfig | None = None, recorder: Any = None):
        super().__init__(config, recorder)
        self.places: dict[str, DrsPlace] = {}

    def _stub(self, s: _Swap) -> Any:
        return self.si(s.vcenter)[1]._stub

    # -- prepare ----------------------------------------------------------------------------------
    def prepare(self, plan: PatchPlan) -> dict[str, Any]:
        details = super().prepare(plan)
        for asset, s in self.swaps.items():
            place = read_place(s.vm)
            if place is None:
                continue
            self.places[asset] = place
            details[asset]["drs"] = {"kind": KIND, **asdict(place)}
        return details

    # -- placement and the swap ---------------------------------------------------------------------
    def _relocate_spec(self, s: _Swap) -> Any:
        from pyVmomi import vim

        spec = super()._relocate_spec(s)
        place = self.places.get(s.asset_id)
        if place is not None and place.pin_host:
            spec.host = vim.HostSystem(place.pin_host, self._stub(s))
        return spec

    def _clone(self, s: _Swap) -> None:
        from pyVmomi import vim

        super()._clone(s)
        place = self.places.get(s.asset_id)
        if place is None or not place.pin_host:
            return
        if s.clone is None:  # a dry run: the move is listed as conditional, like the base driver's power-on
            self._send("RelocateVM_Task", f"{s.name}-qlrf-new", {"host": place.pin_host, "why": place.pin_reason,
                                                                 "only_if": "the clone landed on another host"},
                       lambda: None, "")
            return
        host = s.clone.runtime.host
        if host is None or _moid(host) != place.pin_host:  # the clone spec's host is a request, not a promise
            target = vim.HostSystem(place.pin_host, self._stub(s))
            self._send("RelocateVM_Task", f"{s.name}-qlrf-new", {"host": place.pin_host, "why": place.pin_reason},
                       lambda: s.clone.RelocateVM_Task(spec=vim.vm.RelocateSpec(host=target, pool=s.pool)),
                       f"moving the clone of {s.name} to host {place.pin_host}")

    def _swap(self, s: _Swap) -> None:
        super()._swap(s)
        place = self.places.get(s.asset_id)
        if place is not None and (place.groups or place.rules or place.override):
            self._take_place(s, place, give_to_clone=True)

    def _take_place(self, s: _Swap, place: DrsPlace, *, give_to_clone: bool) -> None:
        """One cluster reconfiguration: the clone takes the old VM's place (or gives it back)."""
        from pyVmomi import vim

        cluster = vim.ClusterComputeResource(place.cluster, self._stub(s))

        def reconfigure() -> Any:  # read the rules when the call is made (a dry run makes none)
            old, new = (s.vm, s.clone) if give_to_clone else (s.clone, s.vm)
            swap = lambda vms: [new if _moid(v) == _moid(old) else v for v in vms or []]  # noqa: E731
            config = cluster.configurationEx
            spec = vim.cluster.ConfigSpecEx()
            for group in config.group or []:
                if group.name in place.groups and isinstance(group, vim.cluster.VmGroup):
                    spec.groupSpec.append(vim.cluster.GroupSpec(
                        operation="edit", info=vim.cluster.VmGroup(name=group.name, vm=swap(group.vm))))
            for rule in config.rule or []:
                if rule.name in place.rules:
                    info = type(rule)(key=rule.key, name=rule.name, enabled=rule.enabled, mandatory=rule.mandatory,
                                      vm=swap(rule.vm))
                    spec.rulesSpec.append(vim.cluster.RuleSpec(operation="edit", info=info))
            if place.override is not None:
                if give_to_clone:
                    spec.drsVmConfigSpec.append(vim.cluster.DrsVmConfigSpec(
                        operation="add", info=vim.cluster.DrsVmConfigInfo(
                            key=new, enabled=place.override["enabled"], behavior=place.override["behavior"])))
                else:
                    spec.drsVmConfigSpec.append(vim.cluster.DrsVmConfigSpec(operation="remove", removeKey=old))
            return self._task(cluster.ReconfigureComputeResource_Task(spec=spec, modify=True),
                              f"giving {s.name}'s DRS place to the {params['to']}")

        params = {"groups": place.groups, "rules": place.rules, "override": place.override,
                  "to": "clone" if give_to_clone else "original"}
        self.recorder.send(CloudCall("vsphere", "ClusterComputeResource", "ReconfigureComputeResource_Task",
                                     place.cluster, params), reconfigure)
        place.adopted = give_to_clone and not self.recorder.dry_run

    # -- health -----------------------------------------------------------------------------------
    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        report = super().health(plan, index)
        problems: dict[str, str] = {}
        for asset, detail in report.details.items():
            place = self.places.get(asset)
            s = self.swaps.get(asset)
            if place is None or s is None or s.clone is None or not isinstance(detail, dict) or detail.get("problem"):
                continue
            problem = self._place_problem(s, place)
            if problem:
                detail["problem"] = problem
                problems[s.name] = problem
        if not problems:
            return report
        unhealthy = {**report.details.get("unhealthy", {}), **problems}
        details = {**report.details, "unhealthy": unhealthy}
        return HealthReport(False, report.total, report.healthy_count - len(problems), details)

    def _place_problem(self, s: _Swap, place: DrsPlace) -> str | None:
        from pyVmomi import vim

        clone = _moid(s.clone)
        config = vim.ClusterComputeResource(place.cluster, self._stub(s)).configurationEx
        by_name = {g.name: g for g in config.group or []}
        by_name.update({r.name: r for r in config.rule or []})
        for name in [*place.groups, *place.rules]:
            if name not in by_name or clone not in _members(by_name[name]):
                return f"not in DRS {'group' if name in place.groups else 'rule'} {name}"
        host = s.clone.runtime.host
        if place.must_hosts and (host is None or _moid(host) not in place.must_hosts):
            return f"on host {_moid(host) if host else 'none'}, outside VM-host rule {', '.join(place.host_rules)}"
        return None

    # -- rollback ---------------------------------------------------------------------------------
    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        errors: list[str] = []
        for asset, place in self.places.items():
            s = self.swaps.get(asset)
            if s is None or not place.adopted:
                continue
            try:
                self._take_place(s, place, give_to_clone=False)
            except Exception as exc:  # noqa: BLE001 - the swap is still undone below; report it
                errors.append(f"VM {s.name}: DRS place not given back: {' '.join(str(exc).split())[:300]}")
        details = super().rollback(plan, waves_done)
        if errors:
            raise DriverError("rollback incomplete: " + "; ".join(errors))
        return details

    # -- the journal's state protocol -------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """The base driver's swaps and templates (qlrf.remediation.journal) plus each VM's DRS place."""
        return {**super().checkpoint(), "kind": KIND, "places": {a: asdict(p) for a, p in self.places.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        self.places = {a: DrsPlace(**p) for a, p in state["places"].items()}


__all__ = ["KIND", "DrsPlace", "VsphereDrsDriver", "config_from_env", "read_place"]
