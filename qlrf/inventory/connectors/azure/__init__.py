"""Azure live discovery through azure-mgmt-compute: VMs, scale sets, managed and gallery images, snapshots.

What it lists, per subscription (scope `azure:<subscription>`), all through ComputeManagementClient:

- `virtual_machines.list_all(status_only="true")` -> Normalised.vms, power state from the instance view
  (if those pages come back without the model, `list_all()` too, instance views merged in by id)
- `virtual_machine_scale_sets.list_all()` -> facts["scaling_groups"]; for each Uniform scale set
  `virtual_machine_scale_set_vms.list(rg, name, expand="instanceView")` -> Normalised.vms
- `images.list()`, `galleries.list()` -> `gallery_images.list_by_gallery` ->
  `gallery_image_versions.list_by_gallery_image` -> facts["images"]; image ids a VM or scale set
  references that no listing showed (another subscription's gallery, a deleted image) are read with
  `.get` once each (404: found=False). Marketplace references (publisher:offer:sku:version) are not
  looked up.
- `snapshots.list()` -> Normalised.snapshots, linked to VMs by OS disk id

Rows come from qlrf.inventory.normalize.azure fed with the same ARM REST JSON a file export holds: the SDK's
dict-based models (azure-mgmt-compute >= 38) give it back unchanged through `as_dict()` (camelCase,
`properties` nesting, timestamps as sent). All subscriptions go through one normalise() call, so a
snapshot is linked to its VM by OS disk id case-insensitively, across subscriptions too, exactly as
when the same JSON is imported from files.

Uniform scale-set instances are not in the VM list; they are listed per scale set and normalised
like VMs (group = scale set name). Flexible scale-set members are ordinary VMs.

Failures never raise (except bad configuration): a subscription whose VM listing fails is recorded as
`azure:<subscription>` with reason "<status> <code>: <message>" (403 AuthorizationFailed, 404
SubscriptionNotFound...), and the other subscriptions are still returned. If the VMs were read but
another listing failed, that part is recorded as `azure:<subscription>:<part>` (scale_sets, images,
snapshots) and the VMs are kept. A credential that cannot get a token (wrong or expired secret, no
credential in the default chain) fails every subscription with a reason naming the subscription, tenant
and client id, never the secret.

Throttling: ARM answers 429 with Retry-After; azure-core's RetryPolicy (retry_total attempts, honouring
Retry-After, exponential backoff otherwise) retries it, as it does 408/5xx.

Side effect to know: azure-mgmt-core's pipeline answers 409 MissingSubscriptionRegistration (Compute
provider never registered in a subscription) by POSTing providers/Microsoft.Compute/register. With a
read-only role that POST is refused and the 409 is what gets recorded.

Modules: `config` (AzureConfig, config_from_env), `sessions` (credential, Compute client, error
reasons), `facts` (image and scale-set fact rows), `discovery` (discover: the subscription fan-out).
"""

from qlrf.inventory.connectors.azure.config import ARM_SCOPE, KNOWN_AUTHORITIES, AzureConfig, config_from_env
from qlrf.inventory.connectors.azure.discovery import discover
from qlrf.inventory.connectors.azure.facts import image_fact, scaling_group_rows
from qlrf.inventory.connectors.azure.sessions import compute_client, explain, make_credential

__all__ = [
    "ARM_SCOPE",
    "AzureConfig",
    "KNOWN_AUTHORITIES",
    "compute_client",
    "config_from_env",
    "discover",
    "explain",
    "image_fact",
    "make_credential",
    "scaling_group_rows",
]
