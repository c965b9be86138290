"""Azure discovery: subscriptions fan out; each lists its VMs, scale sets, images and snapshots as ARM
JSON, and all subscriptions are normalised together at the end."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from qlrf.inventory.connectors.azure.config import AzureConfig
from qlrf.inventory.connectors.azure.facts import (
    arm_props,
    arm_segment,
    image_fact,
    image_type_of,
    mark_latest,
    scaling_group_rows,
)
from qlrf.inventory.connectors.azure.sessions import (
    compute_client,
    credential_who,
    explain,
    first_lines,
    make_credential,
)
from qlrf.inventory.connectors.common import (
    Progress,
    ScopeFailed,
    ScopeFanOut,
    ScopeResult,
    Scrubber,
    finish,
    gather,
    silent,
    unexpected_failure,
)
from qlrf.inventory.contract import Normalised
from qlrf.inventory.normalize import azure as normalize_azure
from qlrf.inventory.normalize import no_cyclic_gc
from qlrf.inventory.tags import TagMapping

log = logging.getLogger(__name__)


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
            return self.scrub(f"{type(exc).__name__}: {first_lines(str(exc.message or exc))}")
        except ServiceRequestError as exc:
            return self.scrub(f"cannot reach the token endpoint: {first_lines(str(exc))}")
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
        if any(not arm_props(vm).get("vmId") or "storageProfile" not in arm_props(vm) for vm in vms):
            try:
                views = {str(vm["id"]).lower(): arm_props(vm).get("instanceView") for vm in vms}
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
                if (arm_props(vmss).get("orchestrationMode") or "Uniform").lower() == "uniform":
                    rg, name = arm_segment(vmss["id"], "resourceGroups"), vmss["name"]
                    second[f"vmss:{vmss['id']}"] = lambda rg=rg, name=name: _as_dicts(
                        client.virtual_machine_scale_set_vms.list(rg, name, expand="instanceView")
                    )
        if isinstance(first["galleries"], Exception):
            part_failed("images", first["galleries"])
        else:
            for gallery in first["galleries"]:
                rg, name = arm_segment(gallery["id"], "resourceGroups"), gallery["name"]
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
                    rg = arm_segment(definition["id"], "resourceGroups")
                    gallery = arm_segment(definition["id"], "galleries")
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
        image_type = image_type_of(image_id)
        sub = arm_segment(image_id, "subscriptions") or ""
        rg = arm_segment(image_id, "resourceGroups") or ""
        try:
            client = self.client(sub)
            if image_type == "gallery_image_version":
                resource = client.gallery_image_versions.get(
                    rg,
                    arm_segment(image_id, "galleries"),
                    arm_segment(image_id, "images"),
                    arm_segment(image_id, "versions"),
                )
            elif image_type == "gallery_image":
                resource = client.gallery_images.get(
                    rg, arm_segment(image_id, "galleries"), arm_segment(image_id, "images")
                )
            else:
                resource = client.images.get(rg, arm_segment(image_id, "images"))
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
    who = credential_who(config, credential)
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


def _no_token(
    result: Normalised, subscriptions: list[str], who: str, token_error: str, say: Progress
) -> None:
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
            vmss = (arm_props(vm).get("virtualMachineScaleSet") or {}).get("id")
            if vmss and arm_props(vm).get("vmId"):
                members.setdefault(str(vmss).lower(), []).append(str(arm_props(vm)["vmId"]))
        for vm in r.scale_set_vms:
            if arm_props(vm).get("vmId"):
                members.setdefault(str(vm["id"]).lower().rsplit("/virtualmachines/", 1)[0], []).append(
                    str(arm_props(vm)["vmId"])
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
    mark_latest(image_rows)
    result.facts["images"] = image_rows
    return result
