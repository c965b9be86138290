"""GCP live discovery through google-cloud-compute: instances, their boot disks' images, MIGs, snapshots.

What it lists, per project (scope `gcp:<project>`), with the REST transport:

- `InstancesClient.aggregated_list` (every zone, pages of `page_size`) -> Normalised.vms
- `DisksClient.aggregated_list` -> each instance's image through its boot disk (`sourceImage`): the
  instance itself does not carry it
- `SnapshotsClient.list` -> Normalised.snapshots (linked to VMs by `sourceDisk`), and restored disks
- `ImagesClient.list` (the project's own images) -> facts["images"]; images the boot disks use from other
  projects (public, or a central golden-image project) -> `ImagesClient.get` once each, same table
- `InstanceGroupManagersClient.aggregated_list` (zonal and regional MIGs) -> facts["scaling_groups"]

Rows come from qlrf.inventory.normalize.gcp fed with REST-shaped dicts: each proto message goes through
`type(msg).to_dict(msg, preserving_proto_field_name=False)`, which yields the REST JSON names
(camelCase) and keeps int64/uint64 fields (ids) as decimal strings, as GCE's JSON does, so ids above
the int64 range survive. All projects go through one normalise() call, exactly as a file import of the
same JSON would.

Boot disks restored from a snapshot carry `sourceSnapshot`, not `sourceImage`. The normaliser follows it
only when that snapshot and the disk it was taken from are both in the listings (the restored disk then
inherits that disk's image); otherwise image_ref stays None: a snapshot does not name an image, and
guessing from licenses would be a guess.

Failures never raise: a project whose instance listing fails is recorded as `gcp:<project>` with reason
"<status> <reason>: <message>" (403 IAM_PERMISSION_DENIED, 403 SERVICE_DISABLED, 404 notFound...);
the other projects are still returned. A zone GCE reports unreachable is `gcp:<project>/<zone>`. If the
instances were read but another listing failed, that part is `gcp:<project>:<part>` (disks,
snapshots, images, scaling_groups) and the VMs are kept. Missing or unusable credentials fail every
project with a reason naming the project.

Throttling: the client library's default retry covers only 503/504; every call here passes a
`google.api_core.retry.Retry` that also retries 429 (TooManyRequests / RESOURCE_EXHAUSTED) and 500/502,
with exponential backoff up to `retry_timeout` seconds per call (pager pages reuse it).

Modules: `config` (GcpConfig, config_from_env), `sessions` (credentials, retry, error reasons),
`facts` (REST dicts, aggregated lists, image and MIG fact rows), `discovery` (discover: the project
fan-out).
"""

from qlrf.inventory.connectors.gcp.config import MAX_PAGE_SIZE, SCOPES, GcpConfig, config_from_env
from qlrf.inventory.connectors.gcp.discovery import discover
from qlrf.inventory.connectors.gcp.facts import image_fact, rest_dict, scaling_group_rows, scan_aggregated
from qlrf.inventory.connectors.gcp.sessions import explain, make_credentials, make_retry

__all__ = [
    "GcpConfig",
    "MAX_PAGE_SIZE",
    "SCOPES",
    "config_from_env",
    "discover",
    "explain",
    "image_fact",
    "make_credentials",
    "make_retry",
    "rest_dict",
    "scaling_group_rows",
    "scan_aggregated",
]
