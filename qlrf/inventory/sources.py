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
from qlrf.inventory.scopes import Scope, manifest_scopes
from qlrf.inventory.tags import TagMapping


def manifest_files(directory: Path, platform: str) -> list[dict]:
    """The manifest's file entries for one platform (an empty list when it lists none)."""
    return json.loads((Path(directory) / "manifest.json").read_text())["files"].get(platform, [])


def normalise_file_scope(
    directory: Path, scope: Scope, mapping: TagMapping, discovered_at: datetime
) -> Normalised:
    """One file scope (scopes.manifest_scopes): its files through one normalise_files call, with the
    account/region hint of a hinted file. Duplicate ids are rejected by the caller, across scopes."""
    paths = [Path(directory) / "raw" / f["path"] for f in scope.files]
    hints = scope.files[0] if len(scope.files) == 1 else {}
    return normalise_files(
        scope.platform,
        paths,
        mapping=mapping,
        discovered_at=discovered_at,
        account=hints.get("account") or None,
        region=hints.get("region") or None,
    )


def from_manifest(directory: Path, platform: str, mapping: TagMapping, discovered_at: datetime) -> Normalised:
    """Normalise the files a manifest lists for one platform (per-file account/region hints honoured):
    the same file scopes the discovery fan-out runs as separate steps, here one after the other."""
    out = Normalised()
    for scope in manifest_scopes(platform, manifest_files(directory, platform)):
        out.extend(normalise_file_scope(directory, scope, mapping, discovered_at))
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
