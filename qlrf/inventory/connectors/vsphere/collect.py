"""Property collection over one logged-in vCenter: paged RetrievePropertiesEx, the topology map for
datacenter and cluster, and each VM as a `govc vm.info -json` document; templates as fact rows."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from qlrf.inventory.connectors.common import (
    Progress,
)
from qlrf.inventory.connectors.vsphere.config import DEFAULT_PAGE_SIZE
from qlrf.inventory.normalize import vsphere as vsphere_norm
from qlrf.inventory.normalize.common import parse_time

log = logging.getLogger(__name__)

# Exactly what the file normaliser and the template facts read; nothing else crosses the wire.
VM_PROPERTIES: tuple[str, ...] = (
    "config.name",
    "config.instanceUuid",
    "config.uuid",
    "config.template",
    "config.createDate",
    "config.guestFullName",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "runtime.powerState",
    "runtime.host",
    "guest.ipAddress",
    "customValue",
    "snapshot",
    "parent",
)
_CONFIG_KEYS = {
    "config.name": "Name",
    "config.uuid": "Uuid",
    "config.instanceUuid": "InstanceUuid",
    "config.guestFullName": "GuestFullName",
    "config.template": "Template",
}


@dataclass
class VcenterStats:
    vcenter: str
    vms: int = 0  # VM rows (templates excluded)
    templates: int = 0
    snapshots: int = 0
    pages: int = 0  # RetrievePropertiesEx + ContinueRetrievePropertiesEx answers for VMs
    seconds: float = 0.0
    error: str | None = None


def _pages(si: Any, object_types: list[Any], prop_specs: list[Any], page_size: int) -> Iterator[list[Any]]:
    """ObjectContent pages of one ContainerView (from the root folder) via RetrievePropertiesEx paging."""
    from pyVmomi import vim, vmodl

    pc = vmodl.query.PropertyCollector
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, object_types, True)
    collector = content.propertyCollector
    token = None
    try:
        spec = pc.FilterSpec(
            objectSet=[
                pc.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        pc.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)
                    ],
                )
            ],
            propSet=prop_specs,
        )
        result = collector.RetrievePropertiesEx(
            specSet=[spec], options=pc.RetrieveOptions(maxObjects=page_size)
        )
        while result is not None:
            token = result.token
            yield list(result.objects)
            if not token:
                break
            result = collector.ContinueRetrievePropertiesEx(token=token)
            token = None
    finally:
        try:
            if token:
                collector.CancelRetrievePropertiesEx(token=token)
            view.DestroyView()
        except Exception:  # noqa: BLE001 - cleanup must not mask the real error
            log.debug("vSphere view cleanup failed", exc_info=True)


@dataclass
class _Topology:
    """moid -> (wsdl type, name, parent moid) for folders, datacenters, compute resources and hosts."""

    nodes: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)
    _dc: dict[str, str | None] = field(default_factory=dict)

    def datacenter(self, moid: str | None) -> str | None:
        """Name of the datacenter above `moid` (walks parents once, caches every node on the way)."""
        path: list[str] = []
        found: str | None = None
        current = moid
        while current is not None and len(path) < 256:
            if current in self._dc:
                found = self._dc[current]
                break
            node = self.nodes.get(current)
            if node is None:
                break
            path.append(current)
            if node[0] == "Datacenter":
                found = node[1]
                break
            current = node[2]
        for seen in path:
            self._dc[seen] = found
        return found

    def cluster(self, host_moid: str | None) -> str | None:
        host = self.nodes.get(host_moid or "")
        parent = self.nodes.get(host[2] or "") if host else None
        return parent[1] if parent and parent[0] == "ClusterComputeResource" else None


def _topology(si: Any, page_size: int) -> _Topology:
    from pyVmomi import vim, vmodl

    spec = vmodl.query.PropertyCollector.PropertySpec(type=vim.ManagedEntity, pathSet=["name", "parent"])
    topo = _Topology()
    types = [vim.Folder, vim.Datacenter, vim.ComputeResource, vim.HostSystem]
    for page in _pages(si, types, [spec], page_size):
        for oc in page:
            props = {p.name: p.val for p in oc.propSet}
            parent = props.get("parent")
            topo.nodes[oc.obj._moId] = (
                oc.obj._wsdlName,
                str(props.get("name") or ""),
                parent._moId if parent else None,
            )
    return topo


def _available_fields(si: Any) -> list[dict]:
    from pyVmomi import vim

    manager = si.RetrieveContent().customFieldsManager
    if manager is None:  # a standalone ESXi host has no custom fields
        return []
    out = []
    for f in manager.field or ():
        if f.managedObjectType in (None, vim.VirtualMachine):
            out.append({"Key": f.key, "Name": f.name, "Type": "string"})
    return out


def _iso(value: Any) -> str | None:
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ref(obj: Any) -> dict | None:
    return {"Type": obj._wsdlName, "Value": obj._moId} if obj is not None else None


def _snapshot_tree(nodes: Any) -> list[dict]:
    return [
        {
            "Snapshot": _ref(n.snapshot),
            "Name": n.name,
            "Id": n.id,
            "CreateTime": _iso(n.createTime),
            "State": str(n.state) if n.state is not None else None,
            "ChildSnapshotList": _snapshot_tree(n.childSnapshotList) if n.childSnapshotList else None,
        }
        for n in nodes or ()
    ]


def vm_document(
    moid: str, props: dict[str, Any], *, vcenter: str, topology: _Topology, available: list[dict]
) -> dict:
    """One VM as `govc vm.info -json` prints it (PascalCase), plus Vcenter/Datacenter/Cluster."""
    config: dict[str, Any] | None = None
    if any(k.startswith("config.") for k in props):
        config = {key: props.get(path) for path, key in _CONFIG_KEYS.items()}
        config["Template"] = bool(config["Template"])
        config["CreateDate"] = _iso(props.get("config.createDate"))
        config["Hardware"] = {
            "NumCPU": props.get("config.hardware.numCPU"),
            "MemoryMB": props.get("config.hardware.memoryMB"),
        }
    host = props.get("runtime.host")
    host_moid = host._moId if host is not None else None
    parent = props.get("parent")
    power = props.get("runtime.powerState")
    snapshot = props.get("snapshot")
    doc: dict[str, Any] = {
        "Self": {"Type": "VirtualMachine", "Value": moid},
        "Config": config,
        "Runtime": {"PowerState": str(power) if power is not None else None, "Host": _ref(host)},
        "Guest": {"IpAddress": props.get("guest.ipAddress")},
        "AvailableField": available,
        "CustomValue": [
            {"Key": v.key, "Value": getattr(v, "value", None)} for v in props.get("customValue") or ()
        ],
        "Snapshot": {"RootSnapshotList": _snapshot_tree(snapshot.rootSnapshotList)} if snapshot else None,
        "Vcenter": vcenter,
        "Datacenter": topology.datacenter(parent._moId if parent is not None else None)
        or topology.datacenter(host_moid),
        "Cluster": topology.cluster(host_moid),
    }
    return doc


def collect_vm_documents(
    si: Any,
    *,
    vcenter: str,
    page_size: int = DEFAULT_PAGE_SIZE,
    progress: Progress | None = None,
    stats: VcenterStats | None = None,
) -> list[dict]:
    """Every VM and template of one logged-in vCenter as `govc vm.info -json` documents."""
    from pyVmomi import vim, vmodl

    available = _available_fields(si)
    topology = _topology(si, page_size)
    spec = vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=list(VM_PROPERTIES))
    docs: list[dict] = []
    for number, page in enumerate(_pages(si, [vim.VirtualMachine], [spec], page_size), start=1):
        for oc in page:
            props = {p.name: p.val for p in oc.propSet}
            docs.append(
                vm_document(oc.obj._moId, props, vcenter=vcenter, topology=topology, available=available)
            )
        if stats is not None:
            stats.pages = number
        if progress:
            progress(f"vsphere {vcenter}: page {number} ({len(page)} objects, {len(docs)} so far)")
    return docs


def template_rows(docs: list[dict]) -> list[dict]:
    """facts["templates"]: the vSphere templates (golden images), which are not VMs."""
    get = vsphere_norm.get
    rows = []
    for doc in docs:
        config = get(doc, "Config") or {}
        if not get(config, "Template"):
            continue
        rows.append(
            {
                "platform": "vsphere",
                "vcenter": get(doc, "Vcenter"),
                "datacenter": get(doc, "Datacenter"),
                "moid": get(get(doc, "Self"), "Value"),
                "name": get(config, "Name"),
                "instance_uuid": get(config, "InstanceUuid"),
                "uuid": get(config, "Uuid"),
                "guest_os": get(config, "GuestFullName"),
                "created_at": parse_time(get(config, "CreateDate"), "Config.CreateDate"),
            }
        )
    return rows
