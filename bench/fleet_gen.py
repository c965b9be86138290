"""Synthetic million-VM warehouse partitions for benchmarks, built columnar (no JSON on the way)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import numpy as np
import pyarrow as pa

from qlrf.baselines.contracts import load_contracts, registry_table
from qlrf.inventory.contract import INVENTORY_SCHEMA, SNAPSHOT_SCHEMA
from qlrf.inventory.sample import SITES, ensure_estate
from qlrf.warehouse import Warehouse


def build(root: Path, day: date, n: int, platform: str = "aws", seed: int = 1, *, regional: bool = False) -> Warehouse:
    """Write inventory, snapshots and golden_images partitions for `day` with n VMs on one platform.

    By default every VM sits in one region (eu-west-1) and runs an image drawn from every region's
    images: enough for scoring, but no VM has a golden image in its own region, so the remediation
    planner can plan none of them. ``regional=True`` places each VM in its site's region and gives it
    the same family and version's image of that region (rogue images stay rogue), as a real fleet
    is: the planner then plans every drifted VM. The random draws are the same either way."""
    estate = ensure_estate(root / "estate", day)
    as_of = datetime.combine(day, time(6), tzinfo=UTC)
    registry = registry_table(load_contracts(estate / "golden", public_keys=[], require_signatures=False), as_of)
    wh = Warehouse(str(root / "warehouse"))
    wh.write("golden_images", registry, day)
    rng = np.random.default_rng(seed)
    refs = np.array([r for r, p in zip(registry["image_ref"].to_pylist(), registry["platform"].to_pylist(), strict=True) if p == platform])
    image = refs[rng.integers(0, len(refs), n)].astype(object)
    rogue = rng.random(n) < 0.07
    image[rogue] = "ami-0000000deadbeef"
    site_index = rng.integers(0, len(SITES), n)
    sites = np.array(list(SITES))[site_index]
    region = np.full(n, "eu-west-1").astype(object)
    if regional and platform in next(iter(SITES.values())):
        image, region = _regional(registry, platform, image, site_index)
    envs = np.array(["prod", "staging", "dev"])[rng.choice(3, n, p=[0.45, 0.25, 0.3])]
    owners = np.array(["payments", "search", "web", None], dtype=object)[rng.choice(4, n, p=[0.3, 0.3, 0.35, 0.05])]
    ids = np.char.add("i-", np.char.zfill(np.arange(n).astype(str), 17))
    launched = np.datetime64(as_of.replace(tzinfo=None)) - rng.integers(0, 400 * 24, n).astype("timedelta64[h]")
    now = pa.scalar(as_of, pa.timestamp("us", tz="UTC"))
    inv = pa.table(
        {
            "asset_id": ids, "platform": np.full(n, platform), "account": np.full(n, "111111111111"),
            "region": region.astype(str), "zone": np.char.add(region.astype(str), "a"), "name": ids,
            "state": np.array(["running", "stopped"])[(rng.random(n) < 0.1).astype(int)],
            "image_ref": image, "instance_type": np.full(n, "m6i.large"),
            "launched_at": pa.array(launched.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
            "tags": pa.array([[] for _ in range(n)], pa.map_(pa.string(), pa.string())),
            "group": pa.nulls(n, pa.string()), "site": sites, "environment": envs, "owner": owners,
            "public_ip": rng.random(n) < 0.05, "discovered_at": pa.array(np.full(n, now.value), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "org": pa.nulls(n, pa.string()), "project": pa.nulls(n, pa.string()),  # filled from the mapping on read
        },
        schema=INVENTORY_SCHEMA,
    )
    has_snap = rng.random(n) < 0.9
    snap_age = rng.integers(1, 24 * 10, n)[has_snap].astype("timedelta64[h]")
    snaps = pa.table(
        {
            "asset_id": ids[has_snap], "platform": np.full(has_snap.sum(), platform),
            "snapshot_id": np.char.add("snap-", ids[has_snap]), "source_id": pa.nulls(int(has_snap.sum()), pa.string()),
            "region": pa.nulls(int(has_snap.sum()), pa.string()),
            "created_at": pa.array((np.datetime64(as_of.replace(tzinfo=None)) - snap_age).astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
        },
        schema=SNAPSHOT_SCHEMA,
    )
    wh.write("inventory", inv, day, platform)
    wh.write("vm_snapshots", snaps, day, platform)
    return wh


def _regional(registry: pa.Table, platform: str, image: np.ndarray, site_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each VM's image moved to its site's region (same family and version), and that region."""
    regions = [SITES[site].get(platform, "") for site in SITES]
    rows = [r for r in registry.to_pylist() if r["platform"] == platform]
    release = {r["image_ref"]: (r["family"], r["version"]) for r in rows}
    by_region = {(r["family"], r["version"], r["region"]): r["image_ref"] for r in rows}
    unique, inverse = np.unique(image, return_inverse=True)
    table = np.empty((len(unique), len(regions)), dtype=object)  # (image, site) -> the image the VM runs
    for i, ref in enumerate(unique):
        family, version = release.get(ref, (None, None))  # a rogue image: no release, it stays as it is
        table[i] = [by_region.get((family, version, region), ref) for region in regions]
    moved = table[inverse.ravel(), site_index]
    return moved, np.array(regions, dtype=object)[site_index]
