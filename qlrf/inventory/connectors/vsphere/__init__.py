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

Modules: `config` (VcenterConfig, VsphereConfig, config_from_env), `sessions` (connect, disconnect,
error reasons), `collect` (property collection, VM documents, template rows), `discovery`
(discover, discover_vcenter).
"""

from qlrf.inventory.connectors.common import Progress
from qlrf.inventory.connectors.vsphere.collect import (
    VM_PROPERTIES,
    VcenterStats,
    collect_vm_documents,
    template_rows,
    vm_document,
)
from qlrf.inventory.connectors.vsphere.config import (
    DEFAULT_PAGE_SIZE,
    VcenterConfig,
    VsphereConfig,
    config_from_env,
    parse_host,
)
from qlrf.inventory.connectors.vsphere.discovery import discover, discover_vcenter
from qlrf.inventory.connectors.vsphere.sessions import VcenterError, connect, disconnect, explain

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "Progress",
    "VM_PROPERTIES",
    "VcenterConfig",
    "VcenterError",
    "VcenterStats",
    "VsphereConfig",
    "collect_vm_documents",
    "config_from_env",
    "connect",
    "disconnect",
    "discover",
    "discover_vcenter",
    "explain",
    "parse_host",
    "template_rows",
    "vm_document",
]
