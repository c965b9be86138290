"""GCP discovery: projects fan out; each lists instances, disks, MIGs, images and snapshots, and all
projects are normalised together at the end."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc

from qlrf.inventory.connectors.common import (
    Progress,
    ScopeFailed,
    ScopeFanOut,
    ScopeResult,
    finish,
    gather,
    one_line,
    silent,
    unexpected_failure,
)
from qlrf.inventory.connectors.gcp.config import MAX_PAGE_SIZE, GcpConfig
from qlrf.inventory.connectors.gcp.facts import image_fact, rest_dict, scaling_group_rows, scan_aggregated
from qlrf.inventory.connectors.gcp.sessions import explain, make_credentials, make_retry
from qlrf.inventory.contract import Normalised
from qlrf.inventory.normalize import gcp as normalize_gcp
from qlrf.inventory.normalize import no_cyclic_gc
from qlrf.inventory.normalize.common import last_segment
from qlrf.inventory.tags import TagMapping

log = logging.getLogger(__name__)


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
