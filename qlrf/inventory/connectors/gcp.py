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
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry

from qlrf.envparse import positive_int, split_list
from qlrf.inventory.connectors import common
from qlrf.inventory.connectors.common import (
    Progress,
    ScopeFailed,
    ScopeFanOut,
    ScopeResult,
    finish,
    gather,
    image_fact_row,
    one_line,
    scaling_group_row,
    silent,
    unexpected_failure,
)
from qlrf.inventory.contract import Normalised
from qlrf.inventory.normalize import gcp as normalize_gcp
from qlrf.inventory.normalize import no_cyclic_gc
from qlrf.inventory.normalize.common import last_segment, parse_time
from qlrf.inventory.tags import TagMapping

log = logging.getLogger(__name__)

SCOPES = ("https://www.googleapis.com/auth/compute.readonly",)
MAX_PAGE_SIZE = 500  # GCE's maxResults limit
_UNREACHABLE = {"UNREACHABLE"}


@dataclass
class GcpConfig:
    """What to discover and how. Credentials: an explicit object, else a key/config file, else
    google.auth.default() (GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC, workload identity, metadata server)."""

    projects: list[str] = field(default_factory=list)
    credentials_file: str | None = None
    credentials: Any = field(default=None, repr=False)  # a google.auth Credentials object (tests, callers)
    api_endpoint: str | None = None  # e.g. http://127.0.0.1:P for a fake; None: compute.googleapis.com
    max_workers: int = 8
    page_size: int = MAX_PAGE_SIZE
    timeout: float = 60.0  # per HTTP request
    retry_initial: float = 1.0
    retry_maximum: float = 32.0
    retry_multiplier: float = 2.0
    retry_timeout: float = 300.0  # per call, retries included
    retry: gretry.Retry | None = field(default=None, repr=False)  # overrides the retry_* fields
    resolve_foreign_images: bool = True  # images.get for images the disks use from other projects


def config_from_env(env: Mapping[str, str] | None = None) -> GcpConfig:
    """QLRF_GCP_PROJECTS (comma list), GOOGLE_APPLICATION_CREDENTIALS (standard), QLRF_GCP_ENDPOINT,
    QLRF_GCP_MAX_WORKERS, QLRF_GCP_PAGE_SIZE. Read when called, never at import."""
    env = os.environ if env is None else env
    config = GcpConfig(
        projects=split_list(env.get("QLRF_GCP_PROJECTS")),
        credentials_file=env.get("GOOGLE_APPLICATION_CREDENTIALS") or None,
        api_endpoint=env.get("QLRF_GCP_ENDPOINT") or None,
    )
    if env.get("QLRF_GCP_MAX_WORKERS"):
        config.max_workers = positive_int(env["QLRF_GCP_MAX_WORKERS"], "QLRF_GCP_MAX_WORKERS")
    if env.get("QLRF_GCP_PAGE_SIZE"):
        config.page_size = min(MAX_PAGE_SIZE, positive_int(env["QLRF_GCP_PAGE_SIZE"], "QLRF_GCP_PAGE_SIZE"))
    return config


def make_retry(config: GcpConfig) -> gretry.Retry:
    if config.retry is not None:
        return config.retry
    return gretry.Retry(
        predicate=gretry.if_exception_type(
            gexc.TooManyRequests,  # 429 (ResourceExhausted is a subclass)
            gexc.InternalServerError,
            gexc.BadGateway,
            gexc.ServiceUnavailable,
            gexc.GatewayTimeout,
        ),
        initial=config.retry_initial,
        maximum=config.retry_maximum,
        multiplier=config.retry_multiplier,
        timeout=config.retry_timeout,
    )


def make_credentials(config: GcpConfig) -> Any:
    """Raises google.auth.exceptions.DefaultCredentialsError if none can be found or loaded."""
    if config.credentials is not None:
        return config.credentials
    import google.auth

    if config.credentials_file:
        # The deployment's own file (the same trust as GOOGLE_APPLICATION_CREDENTIALS, which
        # google.auth.default() loads through this very function with the same warning silenced).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            credentials, _ = google.auth.load_credentials_from_file(
                config.credentials_file, scopes=list(SCOPES)
            )
    else:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    return credentials


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


def _api_error(exc: BaseException, scope: str) -> str | None:
    """ "<status> <reason>: <message>" for API errors; after retries, the last error and why it stopped."""
    if isinstance(exc, gexc.RetryError):
        cause = exc.cause
        inner = _explain(cause, scope) if cause is not None else one_line(exc.message)
        return f"{inner} (still failing after retries: {one_line(exc.message)})"
    if isinstance(exc, gexc.GoogleAPICallError):
        first = (exc.errors or [{}])[0] if isinstance(exc.errors, list) else {}
        first = first if isinstance(first, dict) else {}
        reason = exc.reason or first.get("reason") or type(exc).__name__
        message = first.get("message") or re.sub(r"^[A-Z]+ \S+: ", "", str(exc.message))
        return f"{exc.code} {reason}: {one_line(message)}"
    return None


def _credentials(exc: BaseException, scope: str) -> str | None:
    """Missing, rejected or expired Google credentials, naming the project."""
    from google.auth import exceptions as auth_exc

    if isinstance(exc, auth_exc.DefaultCredentialsError):
        return f"{scope}: no usable Google credentials: {one_line(exc)}"
    if isinstance(exc, auth_exc.RefreshError):
        return f"{scope}: Google credentials were rejected or have expired (RefreshError): {one_line(exc)}"
    if isinstance(exc, auth_exc.GoogleAuthError):
        return f"{scope}: Google credentials failed ({type(exc).__name__}): {one_line(exc)}"
    return None


RULES = (_api_error, _credentials)


def _explain(exc: BaseException, scope: str) -> str:
    return common.explain(exc, scope, RULES)


def explain(exc: BaseException, project: str) -> str:
    """ "<status> <reason>: <message>" for API errors; credential and transport failures name the project."""
    return _explain(exc, f"project {project}")


# --------------------------------------------------------------------------------------------------
# Conversion and fact rows
# --------------------------------------------------------------------------------------------------


def rest_dict(message: Any, kind: str | None = None) -> dict:
    """A compute_v1 proto message as the REST JSON dict (camelCase names, 64-bit ints as strings)."""
    data = type(message).to_dict(message, preserving_proto_field_name=False, use_integers_for_enums=False)
    if kind:
        data.setdefault("kind", kind)
    return data


def _path_tail(link: str) -> str:
    """'zones/z/instanceGroupManagers/m' from a MIG URL or a created-by value (project id or number)."""
    path = normalize_gcp.resource_path(link)
    parts = path.split("/")
    return "/".join(parts[2:]) if len(parts) > 2 and parts[0] == "projects" else path


def scan_aggregated(
    pages: Any, field_name: str, kind: str, project: str
) -> tuple[list[dict], dict[str, str], int]:
    """(items as REST dicts, {scope: reason} of zones/regions GCE could not reach, page count) of an
    aggregated list. Scopes with nothing on a page carry a NO_RESULTS_ON_PAGE warning: not a failure."""
    items: list[dict] = []
    unreachable: dict[str, str] = {}
    count = 0
    for page in pages:
        count += 1
        for scope, scoped in page.items.items():
            items.extend(rest_dict(m, kind) for m in getattr(scoped, field_name))
            if "warning" in scoped and scoped.warning.code in _UNREACHABLE:
                unreachable[scope] = f"{scoped.warning.code}: {scoped.warning.message}"
        for scope in page.unreachables:
            unreachable.setdefault(scope.removeprefix(f"projects/{project}/"), "UNREACHABLE")
    return items, unreachable, count


def image_fact(
    image: dict | None,
    image_id: str,
    discovered_at: datetime,
    *,
    found: bool | None = True,
    error: str | None = None,
) -> dict:
    """One image as a fact row; keys shared with the AWS / Azure connectors' image facts plus GCP's own."""
    image = image or {}
    project = normalize_gcp.resource_path(image_id).split("/")[1] if image_id.count("/") >= 2 else None
    deprecated = image.get("deprecated") or {}
    return image_fact_row(
        image_id=image.get("selfLink") or image_id,
        image_type="gce_image",
        account=project,
        region=None,
        found=found,
        name=image.get("name") or last_segment(image_id),
        description=image.get("description"),
        owner_id=project,
        created_at=parse_time(image.get("creationTimestamp"), "creationTimestamp"),
        deprecated_at=parse_time(
            deprecated.get("deprecated") or deprecated.get("obsolete") or deprecated.get("deleted"),
            "deprecated",
        ),
        state=image.get("status"),
        tags={str(k): str(v) for k, v in (image.get("labels") or {}).items()},
        discovered_at=discovered_at,
        family=image.get("family"),
        deprecation_state=deprecated.get("state"),  # DEPRECATED | OBSOLETE | DELETED | None (active)
        replacement=deprecated.get("replacement"),
        error=error,
    )


def scaling_group_rows(
    project: str, migs: list[dict], instances: list[dict], discovered_at: datetime
) -> list[dict]:
    """One row per MIG: target size, template, members (instance ids via `created-by`, which names the
    project by number, so the match is on the path after projects/<x>/), members on another template."""
    by_mig: dict[str, list[dict]] = {}
    for inst in instances:
        for item in (inst.get("metadata") or {}).get("items") or []:
            if item.get("key") == "created-by" and item.get("value"):
                by_mig.setdefault(_path_tail(str(item["value"])), []).append(inst)
    rows = []
    for mig in migs:
        members = by_mig.get(_path_tail(str(mig.get("selfLink", ""))), [])
        template = mig.get("instanceTemplate")
        zone = last_segment(mig.get("zone"))
        on_other = 0
        for inst in members:
            meta = {i.get("key"): i.get("value") for i in (inst.get("metadata") or {}).get("items") or []}
            if (
                template
                and meta.get("instance-template")
                and last_segment(meta["instance-template"]) != last_segment(template)
            ):
                on_other += 1
        rows.append(
            scaling_group_row(
                account=project,
                region=last_segment(mig.get("region")) or (normalize_gcp.region_from_zone(zone) if zone else None),
                zone=zone,
                group_name=mig.get("name"),
                group_id=mig.get("selfLink"),
                desired_capacity=int(mig["targetSize"]) if mig.get("targetSize") is not None else None,
                instance_template=template,
                version_templates=[v.get("instanceTemplate") for v in mig.get("versions") or []],
                members=(str(i["id"]) for i in members if i.get("id")),
                members_on_other_template=on_other if template else None,
                member_count=len(members),  # an instance without an id is still a member
                discovered_at=discovered_at,
            )
        )
    return rows


# --------------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------------


@dataclass
class _ProjectResult(ScopeResult):
    """One project's REST JSON, normalised with the others' at the end."""

    platform: str = field(init=False, default="gcp")
    instances: list[dict] = field(default_factory=list)
    disks: list[dict] = field(default_factory=list)
    snapshots: list[dict] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    migs: list[dict] = field(default_factory=list)
    pages: int = 0

    @property
    def project(self) -> str:
        return self.name

    def counts(self) -> list[str]:
        return [
            f"{len(self.instances)} instances",
            f"{len(self.disks)} disks",
            f"{len(self.migs)} MIGs",
            f"{len(self.images)} images",
            f"{len(self.snapshots)} snapshots",
        ]

    def part_name(self, scope: str) -> str:
        """GCP parts can be zones (`gcp:<project>/<zone>`): keep everything after the platform."""
        return scope.removeprefix("gcp:")


class _Discovery:
    def __init__(self, config: GcpConfig, credentials: Any, fetch: ThreadPoolExecutor):
        self.config = config
        self.credentials = credentials
        self.retry = make_retry(config)
        self.page_size = max(1, min(MAX_PAGE_SIZE, config.page_size))
        self._fetch = fetch

    def client(self, name: str) -> Any:
        """A fresh client per call site: each has its own HTTP session, so threads never share one."""
        from google.api_core.client_options import ClientOptions
        from google.cloud import compute_v1

        options = ClientOptions(api_endpoint=self.config.api_endpoint) if self.config.api_endpoint else None
        return getattr(compute_v1, name)(
            transport="rest", credentials=self.credentials, client_options=options
        )

    def gather(self, calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        return gather(self._fetch, calls)

    def _aggregated(
        self, client_name: str, request_type: str, field_name: str, kind: str, project: str
    ) -> tuple:
        """(items, unreachable {scope: reason}, pages) of one aggregated list."""
        from google.cloud import compute_v1

        request = getattr(compute_v1, request_type)(project=project, max_results=self.page_size)
        with self.client(client_name) as client:  # closes its HTTP session when done
            pager = client.aggregated_list(request=request, retry=self.retry, timeout=self.config.timeout)
            return scan_aggregated(pager.pages, field_name, kind, project)

    def _list(self, client_name: str, request_type: str, kind: str, project: str) -> tuple[list[dict], int]:
        from google.cloud import compute_v1

        request = getattr(compute_v1, request_type)(project=project, max_results=self.page_size)
        items: list[dict] = []
        pages = 0
        with self.client(client_name) as client:
            pager = client.list(request=request, retry=self.retry, timeout=self.config.timeout)
            for page in pager.pages:
                pages += 1
                items.extend(rest_dict(m, kind) for m in page.items)
        return items, pages

    # ---- one project --------------------------------------------------------------------------------

    def project(self, project: str) -> _ProjectResult:
        started = time.perf_counter()
        scope = f"gcp:{project}"
        out = _ProjectResult(name=project)
        got = self.gather(
            {
                "instances": lambda: self._aggregated(
                    "InstancesClient",
                    "AggregatedListInstancesRequest",
                    "instances",
                    "compute#instance",
                    project,
                ),
                "disks": lambda: self._aggregated(
                    "DisksClient", "AggregatedListDisksRequest", "disks", "compute#disk", project
                ),
                "scaling_groups": lambda: self._aggregated(
                    "InstanceGroupManagersClient",
                    "AggregatedListInstanceGroupManagersRequest",
                    "instance_group_managers",
                    "compute#instanceGroupManager",
                    project,
                ),
                "images": lambda: self._list("ImagesClient", "ListImagesRequest", "compute#image", project),
                "snapshots": lambda: self._list(
                    "SnapshotsClient", "ListSnapshotsRequest", "compute#snapshot", project
                ),
            }
        )
        if isinstance(got["instances"], Exception):
            raise ScopeFailed(scope, explain(got["instances"], project))
        out.instances, unreachable, out.pages = got["instances"]
        for zone, reason in sorted(unreachable.items()):
            out.failed.append({"scope": f"{scope}/{last_segment(zone)}", "reason": reason})
        for part in ("disks", "scaling_groups", "images", "snapshots"):
            value = got[part]
            if isinstance(value, Exception):
                out.failed.append({"scope": f"{scope}:{part}", "reason": explain(value, project)})
                log.warning("gcp %s %s: %s", project, part, out.failed[-1]["reason"])
                continue
            if part in ("disks", "scaling_groups"):
                items, unreachable, pages = value
                for zone, reason in sorted(unreachable.items()):
                    out.failed.append({"scope": f"{scope}/{last_segment(zone)}:{part}", "reason": reason})
            else:
                items, pages = value
            out.pages += pages
            setattr(out, {"scaling_groups": "migs"}.get(part, part), items)
        out.seconds = time.perf_counter() - started
        return out

    def foreign_image(self, link: str, discovered_at: datetime) -> dict:
        """GET one image a boot disk uses from a project not discovered here (404: found=False)."""
        path = normalize_gcp.resource_path(link).split("/")  # projects/{p}/global/images/{name}
        if len(path) != 5 or path[2:4] != ["global", "images"]:
            return image_fact(None, link, discovered_at, found=None, error="not an image URL")
        try:
            with self.client("ImagesClient") as client:
                image = client.get(
                    project=path[1], image=path[4], retry=self.retry, timeout=self.config.timeout
                )
        except gexc.NotFound:
            return image_fact(None, link, discovered_at, found=False)
        except Exception as exc:  # noqa: BLE001 - recorded on the row
            return image_fact(None, link, discovered_at, found=None, error=explain(exc, path[1]))
        return image_fact(rest_dict(image, "compute#image"), link, discovered_at)


def _unexpected(exc: Exception, project: str) -> ScopeFailed:
    return unexpected_failure(exc, f"gcp:{project}", explain(exc, project))


def discover(
    config: GcpConfig,
    *,
    mapping: TagMapping,
    discovered_at: datetime,
    progress: Progress | None = None,
    credentials: Any = None,
) -> Normalised:
    """Discover every configured project concurrently; never raises for a GCP-side failure."""
    from google.auth import exceptions as auth_exc
    from google.cloud import compute_v1  # noqa: F401 - a 2-4 s import: once here, not racing in the threads

    say = progress or silent
    projects = list(dict.fromkeys(p.strip() for p in config.projects if p.strip()))
    if not projects:
        raise ValueError("GCP discovery has no projects: set QLRF_GCP_PROJECTS (comma-separated project ids)")
    started = time.perf_counter()
    result = Normalised()
    parts: list[Normalised] = []
    done: list[_ProjectResult] = []

    def summary(merged: Normalised) -> str:
        return (
            f"gcp: {len(merged.vms)} VMs, {len(merged.snapshots)} snapshots from {len(done)}/{len(projects)} "
            f"projects ({sum(r.pages for r in done)} pages), {len(merged.failed_scopes)} failed scopes"
        )

    try:
        credentials = credentials if credentials is not None else make_credentials(config)
    except auth_exc.GoogleAuthError as exc:
        for project in projects:
            result.failed_scopes.append({"scope": f"gcp:{project}", "reason": explain(exc, project)})
        log.warning("gcp: %s", result.failed_scopes[0]["reason"])
        say(f"gcp: FAILED: no usable credentials: {one_line(exc)}")
        return finish(result, parts, say, summary, started)

    workers = max(1, config.max_workers)
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="qlrf-gcp") as pool,
        ThreadPoolExecutor(workers, thread_name_prefix="qlrf-gcp-fetch") as fetch,
    ):
        run = _Discovery(config, credentials, fetch)
        fan_out = ScopeFanOut(pool, "gcp", say, result.failed_scopes, _unexpected)
        for project in projects:
            fan_out.submit(project, run.project, project)
        for _, value in fan_out:
            done.append(value)
            say(value.summary)
        parts.append(_assemble(done, run, mapping, discovered_at))
    return finish(result, parts, say, summary, started)


def _assemble(
    done: list[_ProjectResult],
    run: _Discovery,
    mapping: TagMapping,
    discovered_at: datetime,
) -> Normalised:
    """All projects' JSON through one normalise() call, as a file import of the same JSON would,
    then the MIG and image facts over the rows."""
    done.sort(key=lambda r: r.project)
    docs: list[tuple[str, object]] = []
    for r in done:
        docs.append((f"gcp:{r.project}/instances", r.instances))
        docs.append((f"gcp:{r.project}/disks", r.disks))
        docs.append((f"gcp:{r.project}/snapshots", r.snapshots))
    with no_cyclic_gc():  # as for file imports: millions of acyclic dicts, no GC rescans
        result = normalize_gcp.normalise(docs, mapping=mapping, discovered_at=discovered_at)
    result.failed_scopes.extend(f for r in done for f in r.failed)

    result.facts["scaling_groups"] = [
        row for r in done for row in scaling_group_rows(r.project, r.migs, r.instances, discovered_at)
    ]

    images: dict[str, dict] = {}
    for r in done:
        for image in r.images:
            key = normalize_gcp.resource_path(str(image.get("selfLink", "")))
            images.setdefault(key, image_fact(image, str(image.get("selfLink", "")), discovered_at))
    used = {normalize_gcp.resource_path(ref): ref for ref in (row["image_ref"] for row in result.vms) if ref}
    missing = sorted(link for path, link in used.items() if path not in images)
    if missing and run.config.resolve_foreign_images:
        fetched = run.gather(
            {link: (lambda link=link: run.foreign_image(link, discovered_at)) for link in missing}
        )
        for link, row in fetched.items():
            if isinstance(row, dict):
                images[normalize_gcp.resource_path(link)] = row
    result.facts["images"] = [images[k] for k in sorted(images)]
    return result
