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
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from qlrf.envparse import positive_int, split_list
from qlrf.inventory.connectors import common
from qlrf.inventory.connectors.common import (
    Progress,
    ScopeFailed,
    ScopeFanOut,
    ScopeResult,
    Scrubber,
    finish,
    gather,
    image_fact_row,
    scaling_group_row,
    silent,
    unexpected_failure,
)
from qlrf.inventory.contract import Normalised
from qlrf.inventory.normalize import azure as normalize_azure
from qlrf.inventory.normalize import no_cyclic_gc
from qlrf.inventory.normalize.common import parse_time
from qlrf.inventory.tags import TagMapping

log = logging.getLogger(__name__)

ARM_SCOPE = "https://management.azure.com/.default"
# Entra ID hosts azure-identity knows; any other authority (a test fake, Azure Stack) skips instance discovery.
KNOWN_AUTHORITIES = {
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
}


@dataclass
class AzureConfig:
    """What to discover and how. Without tenant_id + client_id + client_secret the credential is
    DefaultAzureCredential (environment, workload identity, managed identity, Azure CLI...)."""

    subscriptions: list[str] = field(default_factory=list)
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    base_url: str | None = None  # ARM endpoint; None: the public cloud's (management.azure.com)
    authority: str | None = (
        None  # Entra ID host; None: azure-identity's default (honours AZURE_AUTHORITY_HOST)
    )
    credential_scope: str | None = None  # None: <base_url>/.default if base_url is set, else ARM's
    connection_verify: bool | str = True  # or a CA bundle path (tests, TLS-inspecting proxies)
    max_workers: int = 8
    retry_total: int = 10
    retry_backoff_factor: float = 0.8
    retry_backoff_max: int = 60
    read_timeout: int = 120

    def scope(self) -> str:
        if self.credential_scope:
            return self.credential_scope
        return f"{self.base_url.rstrip('/')}/.default" if self.base_url else ARM_SCOPE


def config_from_env(env: Mapping[str, str] | None = None) -> AzureConfig:
    """QLRF_AZURE_SUBSCRIPTIONS (comma list), AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET
    (azure-identity's standard names), QLRF_AZURE_ENDPOINT (ARM base URL), AZURE_AUTHORITY_HOST,
    QLRF_AZURE_CA_BUNDLE, QLRF_AZURE_MAX_WORKERS, QLRF_AZURE_RETRY_TOTAL. Read when called, never at import."""
    env = os.environ if env is None else env
    config = AzureConfig(
        subscriptions=split_list(env.get("QLRF_AZURE_SUBSCRIPTIONS")),
        tenant_id=env.get("AZURE_TENANT_ID") or None,
        client_id=env.get("AZURE_CLIENT_ID") or None,
        client_secret=env.get("AZURE_CLIENT_SECRET") or None,
        base_url=env.get("QLRF_AZURE_ENDPOINT") or None,
        authority=env.get("AZURE_AUTHORITY_HOST") or None,
    )
    if env.get("QLRF_AZURE_CA_BUNDLE"):
        config.connection_verify = env["QLRF_AZURE_CA_BUNDLE"]
    if env.get("QLRF_AZURE_MAX_WORKERS"):
        config.max_workers = positive_int(env["QLRF_AZURE_MAX_WORKERS"], "QLRF_AZURE_MAX_WORKERS")
    if env.get("QLRF_AZURE_RETRY_TOTAL"):
        config.retry_total = positive_int(env["QLRF_AZURE_RETRY_TOTAL"], "QLRF_AZURE_RETRY_TOTAL", minimum=0)
    return config


def _authority_host(authority: str) -> str:
    return authority.removeprefix("https://").rstrip("/").lower()


def make_credential(config: AzureConfig) -> Any:
    """ClientSecretCredential when tenant, client id and secret are all configured, else DefaultAzureCredential."""
    from azure.identity import ClientSecretCredential, DefaultAzureCredential

    kwargs: dict[str, Any] = {}
    if config.authority:
        kwargs["authority"] = config.authority
        if _authority_host(config.authority) not in KNOWN_AUTHORITIES:
            kwargs["disable_instance_discovery"] = True
    if config.connection_verify is not True:
        kwargs["connection_verify"] = config.connection_verify
    if config.client_secret:
        missing = [
            n
            for n, v in (("AZURE_TENANT_ID", config.tenant_id), ("AZURE_CLIENT_ID", config.client_id))
            if not v
        ]
        if missing:
            raise ValueError(f"Azure client secret is set but {' and '.join(missing)} is not")
        return ClientSecretCredential(config.tenant_id, config.client_id, config.client_secret, **kwargs)
    if config.client_id:
        kwargs["managed_identity_client_id"] = config.client_id
        kwargs["workload_identity_client_id"] = config.client_id
    if config.tenant_id:
        kwargs["workload_identity_tenant_id"] = config.tenant_id
    kwargs.pop("connection_verify", None)  # not a DefaultAzureCredential option
    return DefaultAzureCredential(**kwargs)


def compute_client(config: AzureConfig, credential: Any, subscription: str) -> Any:
    from azure.mgmt.compute import ComputeManagementClient

    kwargs: dict[str, Any] = {
        "credential_scopes": [config.scope()],
        "retry_total": config.retry_total,
        "retry_backoff_factor": config.retry_backoff_factor,
        "retry_backoff_max": config.retry_backoff_max,
        "read_timeout": config.read_timeout,
        "user_agent": "qlrf-discovery",
    }
    if config.base_url:
        kwargs["base_url"] = config.base_url
    if config.connection_verify is not True:
        kwargs["connection_verify"] = config.connection_verify
    return ComputeManagementClient(credential, subscription, **kwargs)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def _first_lines(text: str) -> str:
    """azure-identity messages end in Trace ID / Correlation ID / Timestamp lines: keep what precedes."""
    text = re.split(r"\s*Trace ID:", text, maxsplit=1)[0]
    return " ".join(text.split())


def _credential_who(config: AzureConfig, credential: Any = None) -> str:
    """Names the identity in messages: ids only, never the secret."""
    if credential is not None:
        return type(credential).__name__
    if config.client_secret:
        return f"client {config.client_id} in tenant {config.tenant_id}"
    return "DefaultAzureCredential" + (f" (client {config.client_id})" if config.client_id else "")


def _arm_error(exc: BaseException, _scope: str) -> str | None:
    """ARM answers carry their own code and message: "<status> <code>: <message>"."""
    if not isinstance(exc, HttpResponseError) or exc.status_code is None:
        return None
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or exc.reason or type(exc).__name__
    message = getattr(error, "message", None) or _first_lines(str(exc.message or exc))
    return f"{exc.status_code} {code}: {message}"


def _token_error(exc: BaseException, scope: str, identity: str = "") -> str | None:
    if not isinstance(exc, ClientAuthenticationError):
        return None
    return (
        f"{scope}: cannot get an access token"
        + (f" for {identity}" if identity else "")
        + f" ({type(exc).__name__}): {_first_lines(str(exc.message or exc))}"
    )


def _unreachable(exc: BaseException, scope: str) -> str | None:
    if not isinstance(exc, ServiceRequestError):
        return None
    return f"{scope}: cannot reach Azure Resource Manager: {_first_lines(str(exc))}"


def explain(exc: BaseException, subscription: str, who: str = "") -> str:
    """A reason a person can act on: "<status> <code>: <message>" for ARM errors; for credential
    failures one that names the subscription and the identity (never a secret)."""
    rules = (_arm_error, partial(_token_error, identity=who), _unreachable)
    return common.explain(exc, f"subscription {subscription}", rules)


# --------------------------------------------------------------------------------------------------
# ARM ids and fact rows (pure functions over REST shapes)
# --------------------------------------------------------------------------------------------------


def _props(resource: dict) -> dict:
    return resource.get("properties") or {}


def _segment(resource_id: str, name: str) -> str | None:
    """The value after `name` in an ARM id (case-insensitive): _segment(id, "resourceGroups")."""
    parts = resource_id.split("/")
    lowered = [p.lower() for p in parts]
    try:
        return parts[lowered.index(name.lower()) + 1]
    except (ValueError, IndexError):
        return None


def _version_key(name: str) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in name.split("."))


def image_fact(
    resource: dict | None,
    image_id: str,
    image_type: str,
    discovered_at: datetime,
    *,
    found: bool | None = True,
    error: str | None = None,
) -> dict:
    """One image as a fact row; keys shared with the AWS connector's image facts plus Azure's own."""
    resource = resource or {}
    props = _props(resource)
    publishing = props.get("publishingProfile") or {}
    created = publishing.get("publishedDate") or props.get("timeCreated")
    deprecated = publishing.get("endOfLifeDate") or props.get("endOfLifeDate")
    subscription = _segment(image_id, "subscriptions")
    version = image_type == "gallery_image_version"
    return image_fact_row(
        image_id=resource.get("id") or image_id,
        image_type=image_type,  # managed_image | gallery_image | gallery_image_version
        account=subscription,
        region=resource.get("location"),
        found=found,
        name=resource.get("name"),
        description=props.get("description"),
        owner_id=subscription,
        created_at=parse_time(created, "publishedDate"),
        deprecated_at=parse_time(deprecated, "endOfLifeDate"),
        state=props.get("provisioningState"),
        public=False if resource else None,
        tags={str(k): "" if v is None else str(v) for k, v in (resource.get("tags") or {}).items()},
        discovered_at=discovered_at,
        gallery_image=image_id.rsplit("/versions/", 1)[0] if version else None,
        version=resource.get("name") if version else None,
        exclude_from_latest=publishing.get("excludeFromLatest") if version else None,
        latest=None,  # set for gallery versions: the one a reference to the definition resolves to now
        latest_version=None,  # set for gallery image definitions
        os_type=props.get("osType") or ((props.get("storageProfile") or {}).get("osDisk") or {}).get("osType"),
        error=error,
    )


def _image_type(image_id: str) -> str:
    low = image_id.lower()
    if "/galleries/" in low:
        return "gallery_image_version" if "/versions/" in low else "gallery_image"
    return "managed_image"


def _mark_latest(rows: list[dict]) -> None:
    """Gallery: a reference to an image definition launches its highest version not excluded from latest."""
    by_definition: dict[str, list[dict]] = {}
    for row in rows:
        if row["image_type"] == "gallery_image_version" and row["found"]:
            by_definition.setdefault(row["gallery_image"].lower(), []).append(row)
    latest: dict[str, str] = {}
    for definition, versions in by_definition.items():
        eligible = [v for v in versions if not v["exclude_from_latest"]]
        best = max(eligible, key=lambda v: _version_key(v["version"] or ""), default=None)
        for version in versions:
            version["latest"] = version is best
        if best is not None:
            latest[definition] = best["image_id"]
    for row in rows:
        if row["image_type"] == "gallery_image" and row["found"]:
            row["latest_version"] = latest.get(row["image_id"].lower())


def scaling_group_rows(
    scale_sets: list[dict],
    members: dict[str, list[str]],
    images_of: dict[str, str | None],
    discovered_at: datetime,
) -> list[dict]:
    """One row per scale set: capacity, model image, and members (asset ids) with how many run another image."""
    rows = []
    for vmss in scale_sets:
        props = _props(vmss)
        profile = props.get("virtualMachineProfile") or {}
        image = normalize_azure.image_ref(profile.get("storageProfile") or {})
        ids = members.get(str(vmss["id"]).lower(), [])
        rows.append(
            scaling_group_row(
                account=_segment(str(vmss["id"]), "subscriptions"),
                region=vmss.get("location"),
                group_name=vmss.get("name"),
                group_id=vmss.get("id"),
                orchestration_mode=props.get("orchestrationMode") or "Uniform",
                desired_capacity=(vmss.get("sku") or {}).get("capacity"),
                members=ids,
                would_launch_image=image,
                members_on_other_image=(
                    sum(1 for m in ids if (images_of.get(m) or "").lower() != image.lower()) if image else None
                ),
                upgrade_mode=(props.get("upgradePolicy") or {}).get("mode"),
                discovered_at=discovered_at,
            )
        )
    return rows


# --------------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------------


@dataclass
class _SubscriptionResult(ScopeResult):
    """One subscription's ARM JSON, normalised with the others' at the end (cross-subscription links)."""

    platform: str = field(init=False, default="azure")
    vms: list[dict] = field(default_factory=list)
    scale_set_vms: list[dict] = field(default_factory=list)
    scale_sets: list[dict] = field(default_factory=list)
    images: list[tuple[str, dict]] = field(default_factory=list)  # (image_type, resource)
    snapshots: list[dict] = field(default_factory=list)

    @property
    def subscription(self) -> str:
        return self.name

    def counts(self) -> list[str]:
        return [
            f"{len(self.vms) + len(self.scale_set_vms)} VMs ({len(self.scale_set_vms)} in Uniform scale sets)",
            f"{len(self.scale_sets)} scale sets",
            f"{len(self.images)} images",
            f"{len(self.snapshots)} snapshots",
        ]


def _as_dicts(pager: Any) -> list[dict]:
    return [item.as_dict() for item in pager]


class _Discovery:
    def __init__(self, config: AzureConfig, credential: Any, who: str, fetch: ThreadPoolExecutor):
        self.config = config
        self.credential = credential
        self.who = who
        self._fetch = fetch
        self.scrub = Scrubber([config.client_secret], limit=1000)
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def explain(self, exc: BaseException, subscription: str) -> str:
        return self.scrub(explain(exc, subscription, self.who))

    def client(self, subscription: str) -> Any:
        """One client per subscription, shared by its worker threads (azure-core clients are thread-safe)."""
        with self._lock:
            client = self._clients.get(subscription.lower())
            if client is None:
                client = compute_client(self.config, self.credential, subscription)
                self._clients[subscription.lower()] = client
            return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):  # closing is best effort
                client.close()

    def gather(self, calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        return gather(self._fetch, calls)

    def preflight(self) -> str | None:
        """Get one token before fanning out: a bad credential is one clear error, not N token requests."""
        try:
            self.credential.get_token(self.config.scope())
        except ClientAuthenticationError as exc:
            return self.scrub(f"{type(exc).__name__}: {_first_lines(str(exc.message or exc))}")
        except ServiceRequestError as exc:
            return self.scrub(f"cannot reach the token endpoint: {_first_lines(str(exc))}")
        return None

    # ---- one subscription ------------------------------------------------------------------------

    def subscription(self, sub: str) -> _SubscriptionResult:
        started = time.perf_counter()
        scope = f"azure:{sub}"
        client = self.client(sub)
        out = _SubscriptionResult(name=sub)

        first = self.gather(
            {
                "vms": lambda: _as_dicts(client.virtual_machines.list_all(status_only="true")),
                "scale_sets": lambda: _as_dicts(client.virtual_machine_scale_sets.list_all()),
                "images": lambda: _as_dicts(client.images.list()),
                "galleries": lambda: _as_dicts(client.galleries.list()),
                "snapshots": lambda: _as_dicts(client.snapshots.list()),
            }
        )
        if isinstance(first["vms"], Exception):
            raise ScopeFailed(scope, self.explain(first["vms"], sub))

        def part_failed(part: str, exc: BaseException) -> None:
            if any(f["scope"] == f"{scope}:{part}" for f in out.failed):
                return  # one reason per part is enough
            out.failed.append({"scope": f"{scope}:{part}", "reason": self.explain(exc, sub)})
            log.warning("azure %s %s: %s", sub, part, out.failed[-1]["reason"])

        vms = first["vms"]
        # statusOnly=true pages are documented for run-time status; if a page comes back without the
        # model (no vmId / storageProfile), read the full list too and merge the instance views in.
        if any(not _props(vm).get("vmId") or "storageProfile" not in _props(vm) for vm in vms):
            try:
                views = {str(vm["id"]).lower(): _props(vm).get("instanceView") for vm in vms}
                vms = _as_dicts(client.virtual_machines.list_all())
            except Exception as exc:  # noqa: BLE001
                raise ScopeFailed(scope, self.explain(exc, sub)) from None
            for vm in vms:
                view = views.get(str(vm["id"]).lower())
                if view is not None:
                    vm.setdefault("properties", {})["instanceView"] = view
        out.vms = vms

        second: dict[str, Callable[[], Any]] = {}
        if isinstance(first["scale_sets"], Exception):
            part_failed("scale_sets", first["scale_sets"])
        else:
            out.scale_sets = first["scale_sets"]
            for vmss in out.scale_sets:
                if (_props(vmss).get("orchestrationMode") or "Uniform").lower() == "uniform":
                    rg, name = _segment(vmss["id"], "resourceGroups"), vmss["name"]
                    second[f"vmss:{vmss['id']}"] = lambda rg=rg, name=name: _as_dicts(
                        client.virtual_machine_scale_set_vms.list(rg, name, expand="instanceView")
                    )
        if isinstance(first["galleries"], Exception):
            part_failed("images", first["galleries"])
        else:
            for gallery in first["galleries"]:
                rg, name = _segment(gallery["id"], "resourceGroups"), gallery["name"]
                second[f"gallery:{gallery['id']}"] = lambda rg=rg, name=name: _as_dicts(
                    client.gallery_images.list_by_gallery(rg, name)
                )
        if isinstance(first["images"], Exception):
            part_failed("images", first["images"])
        else:
            out.images.extend(("managed_image", image) for image in first["images"])
        if isinstance(first["snapshots"], Exception):
            part_failed("snapshots", first["snapshots"])
        else:
            out.snapshots = first["snapshots"]

        third: dict[str, Callable[[], Any]] = {}
        for key, value in self.gather(second).items():
            kind = key.split(":", 1)[0]
            if isinstance(value, Exception):
                part_failed("scale_sets" if kind == "vmss" else "images", value)
            elif kind == "vmss":
                out.scale_set_vms.extend(value)
            else:
                for definition in value:
                    out.images.append(("gallery_image", definition))
                    rg = _segment(definition["id"], "resourceGroups")
                    gallery = _segment(definition["id"], "galleries")
                    third[definition["id"]] = lambda rg=rg, g=gallery, i=definition["name"]: _as_dicts(
                        client.gallery_image_versions.list_by_gallery_image(rg, g, i)
                    )
        for value in self.gather(third).values():
            if isinstance(value, Exception):
                part_failed("images", value)
            else:
                out.images.extend(("gallery_image_version", version) for version in value)
        out.seconds = time.perf_counter() - started
        return out

    # ---- images referenced but not listed ----------------------------------------------------------

    def referenced_image(self, image_id: str, discovered_at: datetime) -> dict:
        """GET an image a VM references that no listed subscription showed (another subscription's
        gallery, a deleted image). 404: found=False; other errors: found=None with the reason."""
        image_type = _image_type(image_id)
        sub = _segment(image_id, "subscriptions") or ""
        rg = _segment(image_id, "resourceGroups") or ""
        try:
            client = self.client(sub)
            if image_type == "gallery_image_version":
                resource = client.gallery_image_versions.get(
                    rg,
                    _segment(image_id, "galleries"),
                    _segment(image_id, "images"),
                    _segment(image_id, "versions"),
                )
            elif image_type == "gallery_image":
                resource = client.gallery_images.get(
                    rg, _segment(image_id, "galleries"), _segment(image_id, "images")
                )
            else:
                resource = client.images.get(rg, _segment(image_id, "images"))
        except ResourceNotFoundError:
            return image_fact(None, image_id, image_type, discovered_at, found=False)
        except Exception as exc:  # noqa: BLE001 - recorded on the row
            return image_fact(
                None, image_id, image_type, discovered_at, found=None, error=self.explain(exc, sub)
            )
        return image_fact(resource.as_dict(), image_id, image_type, discovered_at)


def _unexpected(run: _Discovery) -> Callable[[Exception, str], ScopeFailed]:
    """A bug or an unforeseen error in one subscription must not lose the others."""
    return lambda exc, sub: unexpected_failure(exc, f"azure:{sub}", run.explain(exc, sub))


def discover(
    config: AzureConfig,
    *,
    mapping: TagMapping,
    discovered_at: datetime,
    progress: Progress | None = None,
    credential: Any = None,
) -> Normalised:
    """Discover every configured subscription concurrently; never raises for an Azure-side failure."""
    say = progress or silent
    subscriptions = list(dict.fromkeys(s.strip() for s in config.subscriptions if s.strip()))
    if not subscriptions:
        raise ValueError(
            "Azure discovery has no subscriptions: set QLRF_AZURE_SUBSCRIPTIONS (comma-separated ids)"
        )
    started = time.perf_counter()
    own_credential = credential is None
    who = _credential_who(config, credential)
    credential = make_credential(config) if own_credential else credential
    result = Normalised()
    parts: list[Normalised] = []
    done: list[_SubscriptionResult] = []
    workers = max(1, config.max_workers)
    try:
        with (
            ThreadPoolExecutor(workers, thread_name_prefix="qlrf-azure") as pool,
            ThreadPoolExecutor(workers, thread_name_prefix="qlrf-azure-fetch") as fetch,
        ):
            run = _Discovery(config, credential, who, fetch)
            try:
                token_error = run.preflight()
                if token_error is not None:
                    _no_token(result, subscriptions, who, token_error, say)
                else:
                    fan_out = ScopeFanOut(pool, "azure", say, result.failed_scopes, _unexpected(run))
                    for sub in subscriptions:
                        fan_out.submit(sub, run.subscription, sub)
                    for _, value in fan_out:
                        done.append(value)
                        say(value.summary)
                    parts.append(_assemble(done, run, mapping, discovered_at))
            finally:
                run.close()
    finally:
        if own_credential and hasattr(credential, "close"):
            credential.close()

    def summary(merged: Normalised) -> str:
        return (
            f"azure: {len(merged.vms)} VMs, {len(merged.snapshots)} snapshots from {len(done)}/"
            f"{len(subscriptions)} subscriptions, {len(merged.failed_scopes)} failed scopes"
        )

    return finish(result, parts, say, summary, started)


def _no_token(result: Normalised, subscriptions: list[str], who: str, token_error: str, say: Progress) -> None:
    """A credential that cannot get a token fails every subscription, each named, with one message."""
    for sub in subscriptions:
        reason = f"subscription {sub}: cannot get an access token for {who}: {token_error}"
        result.failed_scopes.append({"scope": f"azure:{sub}", "reason": reason})
    log.warning("azure: cannot get an access token for %s: %s", who, token_error)
    say(f"azure: FAILED: cannot get an access token for {who}: {token_error}")


def _assemble(
    done: list[_SubscriptionResult],
    run: _Discovery,
    mapping: TagMapping,
    discovered_at: datetime,
) -> Normalised:
    """All subscriptions' JSON through one normalise() call (snapshots link to VMs across
    subscriptions, as in a file import), then the scale-set and image facts over the rows."""
    done.sort(key=lambda r: r.subscription.lower())
    docs: list[tuple[str, object]] = []
    failed: list[dict] = []
    for r in done:
        docs.append((f"azure:{r.subscription}/virtualMachines", {"value": r.vms}))
        if r.scale_set_vms:
            docs.append(
                (
                    f"azure:{r.subscription}/virtualMachineScaleSets/virtualMachines",
                    {"value": r.scale_set_vms},
                )
            )
        if r.snapshots:
            docs.append((f"azure:{r.subscription}/snapshots", {"value": r.snapshots}))
        failed.extend(r.failed)
    with no_cyclic_gc():  # as for file imports: millions of acyclic dicts, no GC rescans
        result = normalize_azure.normalise(docs, mapping=mapping, discovered_at=discovered_at)
    result.failed_scopes.extend(failed)

    # Scale-set membership: Flexible members name their scale set; Uniform instances are under it.
    images_of = {row["asset_id"]: row["image_ref"] for row in result.vms}
    members: dict[str, list[str]] = {}
    for r in done:
        for vm in r.vms:
            vmss = (_props(vm).get("virtualMachineScaleSet") or {}).get("id")
            if vmss and _props(vm).get("vmId"):
                members.setdefault(str(vmss).lower(), []).append(str(_props(vm)["vmId"]))
        for vm in r.scale_set_vms:
            if _props(vm).get("vmId"):
                members.setdefault(str(vm["id"]).lower().rsplit("/virtualmachines/", 1)[0], []).append(
                    str(_props(vm)["vmId"])
                )
    scale_sets = [vmss for r in done for vmss in r.scale_sets]
    result.facts["scaling_groups"] = scaling_group_rows(scale_sets, members, images_of, discovered_at)

    # Images: everything listed, plus every ARM image id a VM or scale set references that no listing showed.
    images: dict[str, dict] = {}
    for r in done:
        for image_type, resource in r.images:
            images.setdefault(
                str(resource["id"]).lower(),
                image_fact(resource, str(resource["id"]), image_type, discovered_at),
            )
    referenced = {
        ref.lower(): ref
        for ref in [row["image_ref"] for row in result.vms]
        + [g["would_launch_image"] for g in result.facts["scaling_groups"]]
        if ref and ref.lower().startswith("/subscriptions/")
    }
    missing = sorted(v for k, v in referenced.items() if k not in images)
    if missing:
        for row in run.gather(
            {ref: (lambda ref=ref: run.referenced_image(ref, discovered_at)) for ref in missing}
        ).values():
            if isinstance(row, dict):
                images[str(row["image_id"]).lower()] = row
    image_rows = [images[k] for k in sorted(images)]
    _mark_latest(image_rows)
    result.facts["images"] = image_rows
    return result
