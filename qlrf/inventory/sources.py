"""Where inventory comes from when it is not a live connector: the sample estate or export files.

Both go through exactly the normalisers `qlrf inventory normalize` uses.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

from qlrf.inventory.contract import Normalised
from qlrf.inventory.normalize import normalise_files
from qlrf.inventory.sample import ensure_estate
from qlrf.inventory.tags import TagMapping


def from_manifest(directory: Path, platform: str, mapping: TagMapping, discovered_at: datetime) -> Normalised:
    """Normalise the files a manifest lists for one platform (per-file account/region hints honoured)."""
    manifest = json.loads((directory / "manifest.json").read_text())
    files = manifest["files"].get(platform, [])
    out = Normalised()
    plain = [directory / "raw" / f["path"] for f in files if not (f.get("account") or f.get("region"))]
    if plain:
        out.extend(normalise_files(platform, plain, mapping=mapping, discovered_at=discovered_at))
    for f in files:
        if f.get("account") or f.get("region"):
            out.extend(
                normalise_files(
                    platform,
                    [directory / "raw" / f["path"]],
                    mapping=mapping,
                    discovered_at=discovered_at,
                    account=f.get("account"),
                    region=f.get("region"),
                )
            )
    out.reject_duplicate_ids()  # across the manifest's files, not only within each normalise_files call
    return out


def sample_inventory(
    estate_root: Path, day: date, platform: str, mapping: TagMapping, discovered_at: datetime, seed: int = 7
) -> Normalised:
    return from_manifest(ensure_estate(estate_root, day, seed=seed), platform, mapping, discovered_at)


def export_inventory(directory: Path, platform: str, mapping: TagMapping, discovered_at: datetime) -> Normalised:
    """A directory of a customer's own CLI exports: every *.json file for the platform, or a manifest."""
    directory = Path(directory)
    if (directory / "manifest.json").exists():
        return from_manifest(directory, platform, mapping, discovered_at)
    files = sorted(directory.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{directory}: no *.json exports for {platform}")
    return normalise_files(platform, files, mapping=mapping, discovered_at=discovered_at)
