"""Golden image contracts: one YAML file per image family, validated, flattened into a registry.

The registry has one row per (family, version, platform, region) image id, which is what drift
joins against. "Current" is decided per channel: the newest non-revoked version promoted at least
that far (dev < staging < prod), mirroring how HCP Packer channels point at an iteration.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qlrf.contract import PLATFORMS
from qlrf.versions import version_key

CHANNELS: tuple[str, ...] = ("dev", "staging", "prod")
Channel = Literal["dev", "staging", "prod"]


class ContractError(ValueError):
    """A golden-image contract that must not be used; names the file and the field."""


class Revocation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str
    date: date


class ImageVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    released_at: datetime
    channel: Channel
    parent: str | None = None
    revoked: Revocation | None = None
    sbom: str | None = None
    images: dict[str, dict[str, str]] = Field(description="platform -> region ('*' = every region) -> image id")

    @field_validator("images")
    @classmethod
    def _known_platforms(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        unknown = set(value) - set(PLATFORMS)
        if unknown:
            raise ValueError(f"unknown platform(s) {sorted(unknown)}; expected {list(PLATFORMS)}")
        return value

    @field_validator("released_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class ImageFamily(BaseModel):
    model_config = ConfigDict(extra="forbid")
    family: str
    os: str
    versions: list[ImageVersion]
    signature: str | None = None

    @field_validator("versions")
    @classmethod
    def _unique(cls, value: list[ImageVersion]) -> list[ImageVersion]:
        seen = [v.version for v in value]
        dupes = {v for v in seen if seen.count(v) > 1}
        if dupes:
            raise ValueError(f"duplicate versions {sorted(dupes)}")
        return value


def load_contract(path: Path) -> ImageFamily:
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ContractError(f"{path}: cannot read YAML: {exc}") from exc
    try:
        return ImageFamily.model_validate(doc)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ContractError(f"{path}: invalid golden-image contract: {fields}") from exc


def load_contracts(directory: Path) -> list[ImageFamily]:
    files = sorted(Path(directory).glob("*.yaml"))
    if not files:
        raise ContractError(f"{directory}: no golden-image contracts (*.yaml)")
    families = [load_contract(f) for f in files]
    names = [f.family for f in families]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ContractError(f"{directory}: family defined twice: {sorted(dupes)}")
    return families


REGISTRY_SCHEMA = pa.schema(
    [
        ("family", pa.string()),
        ("os", pa.string()),
        ("version", pa.string()),
        ("version_rank", pa.int32()),
        ("released_at", pa.timestamp("us", tz="UTC")),
        ("channel", pa.string()),
        ("channel_level", pa.int8()),
        ("parent", pa.string()),
        ("revoked", pa.bool_()),
        ("revoked_reason", pa.string()),
        ("sbom", pa.string()),
        ("platform", pa.string()),
        ("region", pa.string()),
        ("image_ref", pa.string()),
    ]
)


def registry_table(families: list[ImageFamily], as_of: datetime) -> pa.Table:
    """Flatten contracts to registry rows; versions released after `as_of` are not yet visible."""
    rows = []
    for fam in families:
        visible = sorted((v for v in fam.versions if v.released_at <= as_of), key=lambda v: version_key(v.version))
        for rank, ver in enumerate(visible, start=1):
            revoked = ver.revoked is not None and ver.revoked.date <= as_of.date()
            for platform, regions in ver.images.items():
                for region, ref in regions.items():
                    rows.append(
                        {
                            "family": fam.family,
                            "os": fam.os,
                            "version": ver.version,
                            "version_rank": rank,
                            "released_at": ver.released_at,
                            "channel": ver.channel,
                            "channel_level": CHANNELS.index(ver.channel),
                            "parent": ver.parent,
                            "revoked": revoked,
                            "revoked_reason": ver.revoked.reason if revoked else None,
                            "sbom": ver.sbom,
                            "platform": platform,
                            "region": region,
                            "image_ref": ref,
                        }
                    )
    return pa.Table.from_pylist(rows, schema=REGISTRY_SCHEMA)
