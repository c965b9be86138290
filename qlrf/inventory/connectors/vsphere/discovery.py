"""vSphere discovery: vCenters fan out, one session each, rows normalised per vCenter and merged in
configuration order."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from qlrf.inventory.connectors import common
from qlrf.inventory.connectors.common import (
    Progress,
    ScopeFanOut,
    finish,
    silent,
    unexpected_failure,
)
from qlrf.inventory.connectors.vsphere.collect import VcenterStats, collect_vm_documents, template_rows
from qlrf.inventory.connectors.vsphere.config import DEFAULT_PAGE_SIZE, VcenterConfig, VsphereConfig
from qlrf.inventory.connectors.vsphere.sessions import connect, disconnect, explain
from qlrf.inventory.contract import Normalised
from qlrf.inventory.normalize import vsphere as vsphere_norm
from qlrf.inventory.tags import TagMapping

log = logging.getLogger(__name__)


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
