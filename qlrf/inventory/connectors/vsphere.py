"""vSphere live discovery through pyVmomi: VMs, templates, custom attributes and snapshots, per vCenter.

What it reads, per vCenter (scope `vsphere:<host>`, or `vsphere:<host>:<port>` off the default port):

| call                                                             | becomes                                  |
|------------------------------------------------------------------|------------------------------------------|
| CustomFieldsManager.field (one read)                             | `AvailableField` of every VM document    |
| RetrievePropertiesEx over a ContainerView of Folder, Datacenter, | a moid -> (type, name, parent) map that  |
| ComputeResource, HostSystem (`name`, `parent`), paged            | resolves datacenter and cluster per VM   |
| RetrievePropertiesEx over a ContainerView of VirtualMachine with | one `govc vm.info -json`-shaped document |
| `maxObjects` + ContinueRetrievePropertiesEx (VM_PROPERTIES only) | per VM -> qlrf.inventory.normalize.vsphere         |

Each VM becomes the same document `govc vm.info -json` prints (PascalCase keys: Self, Config, Runtime,
Guest, AvailableField, CustomValue, Snapshot) plus `Vcenter`, `Datacenter` and `Cluster`, and the rows
come from the file normaliser itself (`qlrf.inventory.normalize.vsphere.normalise`, i.e. `vm_row` and
`snapshot_times`), so a live estate and an export cannot differ. Templates are skipped as VMs there and
listed in facts["templates"] here. Datacenter and cluster cost no per-VM round trip: the VM's `parent`
folder chain (or, for VMs outside a folder, `runtime.host` -> compute resource chain) is walked in
the map collected once per vCenter.

vCenters run concurrently on a thread pool, one session each. A vCenter that cannot be read (refused
or unreachable, TLS verification failure, bad credentials, a fault during collection) is recorded in
Normalised.failed_scopes with a reason naming the vCenter (and user), never the password, and yields
no rows; the others still count. TLS: verified by default (system CAs or `ca_file`); pyVmomi would
skip verification for localhost names when given no SSL context, so we always pass one explicitly.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from qlrf.envparse import flag, positive_int
from qlrf.inventory.connectors import common
from qlrf.inventory.connectors.common import (
    Progress,
    ScopeFanOut,
    Scrubber,
    finish,
    silent,
    unexpected_failure,
)
from qlrf.inventory.contract import Normalised
from qlrf.inventory.normalize import vsphere as vsphere_norm
from qlrf.inventory.normalize.common import parse_time
from qlrf.inventory.tags import TagMapping

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 1000
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


# --------------------------------------------------------------------------- configuration


@dataclass
class VcenterConfig:
    """One vCenter. The password is never shown in repr() and never put in an error message."""

    host: str
    port: int | None = None  # None: 443 for https, 80 for http
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    protocol: str = "https"
    verify_tls: bool = True
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in ("https", "http"):
            raise ValueError(f"vCenter {self.host}: protocol must be https or http, not {self.protocol!r}")
        if self.port is None:
            self.port = 443 if self.protocol == "https" else 80

    @property
    def label(self) -> str:
        """How the vCenter is named in rows (`account`) and scopes: the host, plus the port if unusual."""
        default = 443 if self.protocol == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def scope(self) -> str:
        return f"vsphere:{self.label}"


@dataclass
class VsphereConfig:
    vcenters: list[VcenterConfig] = field(default_factory=list)
    page_size: int = DEFAULT_PAGE_SIZE  # RetrieveOptions.maxObjects
    max_workers: int = 8  # vCenters discovered at once
    connect_timeout: float = 10.0  # TCP connect probe
    http_timeout: float = 300.0  # each SOAP call


def parse_host(entry: str, *, protocol: str = "https") -> tuple[str, str, int | None]:
    """`host`, `host:port`, `[v6]:port` or `http(s)://host[:port][/sdk]` -> (protocol, host, port)."""
    text = entry.strip()
    if "://" in text:
        protocol, text = text.split("://", 1)
        protocol = protocol.lower()
        text = text.split("/", 1)[0]
    if protocol not in ("https", "http"):
        raise ValueError(f"vCenter {entry!r}: protocol must be https or http")
    port: int | None = None
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = positive_int(rest[1:], f"port of vCenter {entry!r}")
    elif text.count(":") == 1:
        host, raw = text.split(":")
        port = positive_int(raw, f"port of vCenter {entry!r}")
    else:
        host = text
    if not host:
        raise ValueError(f"vCenter {entry!r}: no host name")
    return protocol, host, port


def config_from_env(env: Mapping[str, str] | None = None) -> VsphereConfig:
    """Read when called, never at import:

    QLRF_VSPHERE_HOSTS       comma list of host[:port] (or http(s)://host[:port]) - one entry per vCenter
    QLRF_VSPHERE_USER        user for every vCenter (e.g. svc-qlrf@vsphere.local)
    QLRF_VSPHERE_PASSWORD    its password (bind with EnvVar in Dagster; never logged)
    QLRF_VSPHERE_PROTOCOL    https (default) or http, for entries without a scheme
    QLRF_VSPHERE_INSECURE=1  skip TLS certificate verification (lab only)
    QLRF_VSPHERE_CA_FILE     PEM bundle that signs the vCenters' certificates
    QLRF_VSPHERE_PAGE_SIZE   objects per RetrievePropertiesEx page (default 1000)
    QLRF_VSPHERE_MAX_WORKERS vCenters discovered concurrently (default 8)
    """
    env = os.environ if env is None else env
    protocol = (env.get("QLRF_VSPHERE_PROTOCOL") or "https").strip().lower()
    verify = not flag(env.get("QLRF_VSPHERE_INSECURE"), "QLRF_VSPHERE_INSECURE")
    ca_file = env.get("QLRF_VSPHERE_CA_FILE") or None
    vcenters = []
    for entry in (env.get("QLRF_VSPHERE_HOSTS") or "").split(","):
        if not entry.strip():
            continue
        proto, host, port = parse_host(entry, protocol=protocol)
        vcenters.append(
            VcenterConfig(
                host=host,
                port=port,
                user=env.get("QLRF_VSPHERE_USER") or None,
                password=env.get("QLRF_VSPHERE_PASSWORD") or None,
                protocol=proto,
                verify_tls=verify,
                ca_file=ca_file,
            )
        )
    config = VsphereConfig(vcenters=vcenters)
    if env.get("QLRF_VSPHERE_PAGE_SIZE"):
        config.page_size = positive_int(env["QLRF_VSPHERE_PAGE_SIZE"], "QLRF_VSPHERE_PAGE_SIZE")
    if env.get("QLRF_VSPHERE_MAX_WORKERS"):
        config.max_workers = positive_int(env["QLRF_VSPHERE_MAX_WORKERS"], "QLRF_VSPHERE_MAX_WORKERS")
    return config


# --------------------------------------------------------------------------- connection


class VcenterError(RuntimeError):
    """A vCenter that could not be read; the message names it and is safe to log."""


@dataclass
class VcenterStats:
    vcenter: str
    vms: int = 0  # VM rows (templates excluded)
    templates: int = 0
    snapshots: int = 0
    pages: int = 0  # RetrievePropertiesEx + ContinueRetrievePropertiesEx answers for VMs
    seconds: float = 0.0
    error: str | None = None


def _ssl_context(vc: VcenterConfig) -> ssl.SSLContext | None:
    if vc.protocol != "https":
        return None
    if not vc.verify_tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=vc.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise VcenterError(f"vCenter {vc.label}: cannot load CA file {vc.ca_file!r}: {exc}") from None


def _tls(exc: BaseException, who: str) -> str | None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate verification failed for {who}: {exc.verify_message or exc}. "
            "Give the CA bundle (QLRF_VSPHERE_CA_FILE / ca_file) or, in a lab, QLRF_VSPHERE_INSECURE=1"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {who} failed: {exc}"
    return None


def _fault(exc: BaseException, who: str, user: str | None) -> str | None:
    """vSphere API faults: bad login, a missing privilege, any other MethodFault by its name."""
    from pyVmomi import vim, vmodl

    if isinstance(exc, vim.fault.InvalidLogin):
        return f"login to {who} as {user!r} failed: invalid user name or password"
    if isinstance(exc, vim.fault.NoPermission):
        return f"{who}: user {user!r} lacks permission {exc.privilegeId or ''} on {exc.object}"
    if isinstance(exc, vmodl.MethodFault):
        return f"{who}: {type(exc).__name__.rsplit('.', 1)[-1]}: {exc.msg or exc}"
    return None


def _unreachable(exc: BaseException, who: str) -> str | None:
    if isinstance(exc, ConnectionRefusedError):
        return f"cannot connect to {who}: connection refused"
    if isinstance(exc, TimeoutError):
        return f"cannot connect to {who}: timed out"
    if isinstance(exc, OSError):
        return f"cannot connect to {who}: {exc.strerror or exc}"
    return None


def _ours(exc: BaseException, _who: str) -> str | None:
    return str(exc) if isinstance(exc, VcenterError) else None


def explain(exc: BaseException, vc: VcenterConfig) -> str:
    """A clear, password-free message for a vCenter that failed."""
    rules = (_ours, _tls, partial(_fault, user=vc.user), _unreachable)
    return Scrubber([vc.password])(common.explain(exc, f"vCenter {vc.label}", rules))


def connect(vc: VcenterConfig, *, connect_timeout: float = 10.0, http_timeout: float = 300.0) -> Any:
    """Log in and return a pyVmomi ServiceInstance; raises VcenterError/OSError/ssl/vim faults."""
    from pyVim.connect import SmartConnect

    if not vc.user:
        raise VcenterError(f"vCenter {vc.label}: no user configured (QLRF_VSPHERE_USER)")
    if not vc.password:
        raise VcenterError(f"vCenter {vc.label}: no password for {vc.user!r} (QLRF_VSPHERE_PASSWORD)")
    context = _ssl_context(vc)
    # SmartConnect's version probe opens a socket without a timeout: fail fast and clearly first.
    with socket.create_connection((vc.host, vc.port), timeout=connect_timeout):
        pass
    return SmartConnect(
        protocol=vc.protocol,
        host=vc.host,
        port=vc.port,
        user=vc.user,
        pwd=vc.password,
        sslContext=context,
        httpConnectionTimeout=http_timeout,
    )


def disconnect(si: Any) -> None:
    from pyVim.connect import Disconnect

    try:
        Disconnect(si)
    except Exception:  # noqa: BLE001 - logging out is best effort
        log.debug("vSphere logout failed", exc_info=True)


# --------------------------------------------------------------------------- property collection


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


# --------------------------------------------------------------------------- discovery


def discover_vcenter(
    vc: VcenterConfig,
    *,
    mapping: TagMapping,
    discovered_at: datetime,
    page_size: int = DEFAULT_PAGE_SIZE,
    connect_timeout: float = 10.0,
    http_timeout: float = 300.0,
    progress: Progress | None = None,
) -> tuple[Normalised, VcenterStats]:
    """One vCenter; never raises for vCenter-side problems (they land in failed_scopes)."""
    stats = VcenterStats(vcenter=vc.label)
    started = time.monotonic()
    out = Normalised()
    si = None
    try:
        si = connect(vc, connect_timeout=connect_timeout, http_timeout=http_timeout)
        docs = collect_vm_documents(si, vcenter=vc.label, page_size=page_size, progress=progress, stats=stats)
    except Exception as exc:  # noqa: BLE001 - any failure of one vCenter is recorded, the others go on
        stats.error = explain(exc, vc)
        stats.seconds = time.monotonic() - started
        out.failed_scopes.append({"scope": vc.scope, "reason": stats.error})
        log.warning("vSphere discovery failed: %s", stats.error)
        if progress:
            progress(f"vsphere {vc.label}: FAILED: {stats.error}")
        return out, stats
    finally:
        if si is not None:
            disconnect(si)
    out = vsphere_norm.normalise(
        [(vc.scope, {"VirtualMachines": docs})], mapping=mapping, discovered_at=discovered_at
    )
    out.facts["templates"] = template_rows(docs)
    stats.vms, stats.templates, stats.snapshots = (
        len(out.vms),
        len(out.facts["templates"]),
        len(out.snapshots),
    )
    stats.seconds = time.monotonic() - started
    if progress:
        progress(
            f"vsphere {vc.label}: done, {stats.vms} VMs, {stats.templates} templates, "
            f"{stats.snapshots} snapshots, {stats.pages} pages in {stats.seconds:.1f}s"
        )
    return out, stats


def discover(
    config: VsphereConfig,
    *,
    mapping: TagMapping,
    discovered_at: datetime,
    progress: Progress | None = None,
    stats: list[VcenterStats] | None = None,
) -> Normalised:
    """All configured vCenters (concurrently). `stats`, if given, receives one VcenterStats per vCenter.

    `progress` is called from worker threads (one per vCenter); it must be thread-safe (appending to a
    list or printing a line is). Rows come out in configuration order whatever order vCenters finish in.
    """
    if not config.vcenters:
        raise ValueError("no vCenters configured: set QLRF_VSPHERE_HOSTS (comma list of host[:port])")
    seen: set[str] = set()
    for vc in config.vcenters:
        if vc.label in seen:
            raise ValueError(f"vCenter {vc.label} is configured twice")
        seen.add(vc.label)

    def one(vc: VcenterConfig) -> tuple[Normalised, VcenterStats]:
        return discover_vcenter(
            vc,
            mapping=mapping,
            discovered_at=discovered_at,
            page_size=config.page_size,
            connect_timeout=config.connect_timeout,
            http_timeout=config.http_timeout,
            progress=progress,
        )

    say = progress or silent
    started = time.perf_counter()
    result = Normalised()
    results: dict[str, tuple[Normalised, VcenterStats]] = {}
    workers = max(1, min(config.max_workers, len(config.vcenters)))
    with ThreadPoolExecutor(workers, thread_name_prefix="qlrf-vsphere") as pool:
        fan_out = ScopeFanOut(pool, "vsphere", say, result.failed_scopes, _unexpected)
        for vc in config.vcenters:
            fan_out.submit(vc, one, vc)
        for vc, value in fan_out:
            results[vc.label] = value
    ordered = [results[vc.label] for vc in config.vcenters if vc.label in results]  # config order
    if stats is not None:
        stats.extend(vc_stats for _, vc_stats in ordered)

    def summary(merged: Normalised) -> str:
        ok = sum(1 for _, vc_stats in ordered if vc_stats.error is None)
        return (
            f"vsphere: {len(merged.vms)} VMs, {len(merged.snapshots)} snapshots from {ok}/"
            f"{len(config.vcenters)} vCenters, {len(merged.failed_scopes)} failed scopes"
        )

    return finish(result, (part for part, _ in ordered), say, summary, started, tables=("templates",))


def _unexpected(exc: Exception, vc: VcenterConfig) -> common.ScopeFailed:
    """discover_vcenter records every vCenter-side failure itself; this is for a bug."""
    return unexpected_failure(exc, vc.scope, explain(exc, vc))
