"""Golden image contracts: one signed YAML file per image family, validated, flattened into a registry.

A contract ``<family>.yaml`` holds the family, its OS, its ``serial`` and every version: version,
released_at, channel (dev / staging / prod, like HCP Packer channels), parent (ancestry: a version
of the same family, or ``<family>@<version>`` of another), revoked {reason, date}, SBOM path (SPDX
JSON, relative to the contract directory or a URL) with its ``sbom_sha256``, and the per-platform
image ids (AMI per region, Azure gallery image-version id or marketplace URN, GCE image self link,
vSphere template; region ``*`` = every region, not allowed for AMIs, which are regional).

``serial`` is a positive integer the issuer raises with every new contract of the family: a
signature says who wrote a file, the serial says which of their files is the newest, so a replayed
old contract is refused (:mod:`qlrf.baselines.guard`). A serial needs no clock, unlike an
``issued_at``. ``retired: true`` withdraws a family on purpose (deleting its file is refused), and
``unrevoke: [{version, reason}]`` lifts a revocation on purpose (dropping it is refused).
``sbom_sha256`` puts the SBOM under the contract's signature: a local SBOM that is missing or
hashes differently rejects the contract.

The signature is detached, cosign's own convention: ``<family>.yaml.sig`` next to the contract is a
cosign-compatible ECDSA P-256 signature of the file's exact bytes (see :mod:`qlrf.baselines.signing`), so
``cosign verify-blob --key cosign.pub --signature ubuntu-22.04.yaml.sig ubuntu-22.04.yaml`` checks our
files too (cosign 2.x also wants ``--insecure-ignore-tlog=true``: these signatures are not in Rekor). What is verified is what is parsed: the bytes are read once, verified, then parsed. An
inline ``signature:`` field is rejected (it could not sign the document that contains it).

The registry has one row per (family, version, platform, region) image id, which is what drift
joins against. "Current" is decided per channel: the newest non-revoked version promoted at least
that far (dev < staging < prod), mirroring how HCP Packer channels point at an iteration.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import pyarrow as pa
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from qlrf.baselines.signing import (
    SIGNATURE_SUFFIX,
    SignatureError,
    configured_public_keys,
    signature_path,
    verify,
)
from qlrf.baselines.versions import version_key
from qlrf.inventory.contract import PLATFORMS

CHANNELS: tuple[str, ...] = ("dev", "staging", "prod")
Channel = Literal["dev", "staging", "prod"]

_NAME = r"^[a-z0-9][a-z0-9._-]{0,62}$"
_VERSION = r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$"
_AWS_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_AMI = re.compile(r"^ami-[0-9a-f]{8,17}$")
_AZURE_GALLERY = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/[^/]+"
    r"/images/[^/]+/versions/[^/]+$",
    re.IGNORECASE,
)
_AZURE_URN = re.compile(r"^[^:\s/]+:[^:\s/]+:[^:\s/]+:[^:\s/]+$")
_GCE_IMAGE = re.compile(r"^(https://(www|compute)\.googleapis\.com/compute/(v1|beta)/)?projects/[^/]+/global/images/[^/]+$")
_REGION = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]*)$")
_SHA256 = r"^[0-9a-f]{64}$"


class ContractError(ValueError):
    """A golden-image contract that must not be used; names the file and the field or the reason."""


class Revocation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1)
    date: date


def _check_image_id(platform: str, region: str, ref: str) -> str | None:
    """Why `ref` is not a valid image id for `platform`/`region`, or None."""
    if not _REGION.match(region):
        return f"region {region!r} is not a region name or '*'"
    if platform == "aws":
        if region == "*":
            return "AMIs are regional: list one AMI per region, not '*'"
        if not _AWS_REGION.match(region):
            return f"{region!r} is not an AWS region"
        if not _AMI.match(ref):
            return f"{ref!r} is not an AMI id (ami-<hex>)"
    elif platform == "azure":
        if not (_AZURE_GALLERY.match(ref) or _AZURE_URN.match(ref)):
            return f"{ref!r} is neither a gallery image-version id nor a marketplace URN (publisher:offer:sku:version)"
    elif platform == "gcp":
        if not _GCE_IMAGE.match(ref):
            return f"{ref!r} is not a GCE image self link (projects/<p>/global/images/<name>)"
    elif not ref.strip() or ref != ref.strip():
        return f"{ref!r} is not a vSphere template name"
    return None


class Unrevocation(BaseModel):
    """An explicit, signed decision that a revoked version is safe again: revocations are sticky, so
    a revocation that merely disappears from a contract is refused (see :mod:`qlrf.baselines.guard`)."""

    model_config = ConfigDict(extra="forbid")
    version: str = Field(pattern=_VERSION)
    reason: str = Field(min_length=1)


class ImageVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(pattern=_VERSION)
    released_at: datetime
    channel: Channel
    parent: str | None = Field(default=None, description="a version of this family, or <family>@<version>")
    revoked: Revocation | None = None
    sbom: str | None = Field(default=None, description="SPDX JSON: relative to the contract directory, or a URL")
    sbom_sha256: str | None = Field(
        default=None, pattern=_SHA256, description="SHA-256 of the SBOM file: the contract's signature covers the SBOM"
    )
    images: dict[str, dict[str, str]] = Field(description="platform -> region ('*' = every region) -> image id")

    @field_validator("images")
    @classmethod
    def _known_platforms(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        unknown = set(value) - set(PLATFORMS)
        if unknown:
            raise ValueError(f"unknown platform(s) {sorted(unknown)}; expected {list(PLATFORMS)}")
        if not any(value.values()):
            raise ValueError("no image ids: at least one platform needs one")
        problems = [
            f"{platform}.{region}: {why}"
            for platform, regions in value.items()
            for region, ref in regions.items()
            if (why := _check_image_id(platform, region, ref))
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    @field_validator("released_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @field_validator("sbom")
    @classmethod
    def _spdx_json(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.endswith(".spdx.json"):
            raise ValueError(f"{value!r}: an SBOM must be SPDX JSON (*.spdx.json)")
        if "://" not in value and (value.startswith("/") or ".." in Path(value).parts):
            raise ValueError(f"{value!r}: a local SBOM path must be relative to the contract directory")
        return value

    @model_validator(mode="after")
    def _revoked_after_release(self) -> ImageVersion:
        if self.revoked is not None and self.revoked.date < self.released_at.date():
            raise ValueError(f"revoked.date {self.revoked.date} is before released_at {self.released_at.date()}")
        return self

    @model_validator(mode="after")
    def _sbom_is_pinned(self) -> ImageVersion:
        # An SBOM the signature does not pin could be swapped after signing: name it with its hash.
        if self.sbom is not None and self.sbom_sha256 is None:
            raise ValueError(f"sbom_sha256: required with sbom {self.sbom!r} (sha256sum of the SBOM file)")
        if self.sbom is None and self.sbom_sha256 is not None:
            raise ValueError("sbom_sha256: given without an sbom")
        return self


class ImageFamily(BaseModel):
    model_config = ConfigDict(extra="forbid")
    family: str = Field(pattern=_NAME)
    os: str = Field(min_length=1)
    # Required in every contract *file* (see _parse); optional here so registries can be built in memory.
    serial: int | None = Field(default=None, ge=1, description="issuer's counter: higher = newer contract")
    retired: bool = Field(default=False, description="the family is withdrawn on purpose: no registry rows")
    unrevoke: list[Unrevocation] = Field(default_factory=list)
    versions: list[ImageVersion] = Field(default_factory=list)

    # Provenance, set by load_contract: the file, the fingerprint of the key that verified it, and
    # the SHA-256 of the exact bytes that were verified (tells two contracts with one serial apart).
    _source: Path | None = PrivateAttr(default=None)
    _signed_by: str | None = PrivateAttr(default=None)
    _sha256: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        return self._source

    @property
    def signed_by(self) -> str | None:
        return self._signed_by

    @property
    def sha256(self) -> str | None:
        return self._sha256

    @model_validator(mode="after")
    def _versions_unless_retired(self) -> ImageFamily:
        if not self.versions and not self.retired:
            raise ValueError("versions: at least one version (or retire the family with retired: true)")
        return self

    @model_validator(mode="after")
    def _unrevoke_consistent(self) -> ImageFamily:
        by_version = {v.version: v for v in self.versions}
        for i, entry in enumerate(self.unrevoke):
            if entry.version not in by_version:
                raise ValueError(f"unrevoke.{i}: {entry.version!r} is not a version of {self.family}")
            if by_version[entry.version].revoked is not None:
                raise ValueError(f"unrevoke.{i}: {entry.version!r} is still revoked in this contract")
        return self

    @field_validator("versions")
    @classmethod
    def _unique(cls, value: list[ImageVersion]) -> list[ImageVersion]:
        seen = [v.version for v in value]
        dupes = {v for v in seen if seen.count(v) > 1}
        if dupes:
            raise ValueError(f"duplicate versions {sorted(dupes)}")
        return value

    @model_validator(mode="after")
    def _parents_exist(self) -> ImageFamily:
        known = {v.version for v in self.versions}
        for i, v in enumerate(self.versions):
            if v.parent is None or "@" in v.parent:
                continue  # another family's image: not checkable from this file
            if v.parent not in known:
                raise ValueError(f"versions.{i}.parent: {v.parent!r} is not a version of {self.family}")
            if v.parent == v.version:
                raise ValueError(f"versions.{i}.parent: a version cannot be its own parent")
        return self


def _parse(path: Path, content: bytes) -> ImageFamily:
    try:
        doc = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: cannot read YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise ContractError(f"{path}: invalid golden-image contract: expected a mapping, got {type(doc).__name__}")
    if "signature" in doc:
        raise ContractError(
            f"{path}: invalid golden-image contract: signature: inline signatures are not supported; "
            f"sign the file and ship the detached {path.name}{SIGNATURE_SUFFIX} (cosign sign-blob)"
        )
    try:
        family = ImageFamily.model_validate(doc)
    except ValidationError as exc:
        fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}" for e in exc.errors())
        raise ContractError(f"{path}: invalid golden-image contract: {fields}") from exc
    if family.family != path.stem:
        raise ContractError(f"{path}: invalid golden-image contract: family: {family.family!r} must match the file name {path.stem!r}")
    if family.serial is None:
        raise ContractError(
            f"{path}: invalid golden-image contract: serial: Field required "
            "(a positive integer the issuer raises with every new contract, e.g. 202611200600)"
        )
    return family


def _check_sboms(path: Path, family: ImageFamily) -> None:
    """Every local SBOM the contract names must exist and hash to its signed sbom_sha256.

    URLs are not fetched here (no network at load time); whoever downloads one checks it against
    the same pinned hash.
    """
    for ver in family.versions:
        if ver.sbom is None or "://" in ver.sbom:
            continue
        sbom = path.parent / ver.sbom
        try:
            digest = hashlib.sha256(sbom.read_bytes()).hexdigest()
        except OSError as exc:
            raise ContractError(f"{path}: SBOM of {ver.version} missing: {sbom}: {exc.strerror or exc}") from None
        if digest != ver.sbom_sha256:
            raise ContractError(
                f"{path}: SBOM of {ver.version} does not match its signed sbom_sha256: {sbom} "
                f"(sha256 {digest[:12]}..., contract says {str(ver.sbom_sha256)[:12]}...)"
            )


def load_contract(
    path: Path, public_keys: Sequence[bytes | str] | None = None, *, require_signature: bool = True
) -> ImageFamily:
    """Read, verify and validate one contract.

    The file's bytes are read once; when `require_signature`, ``<file>.sig`` must exist and verify
    against one of `public_keys` before those same bytes are parsed. Without `require_signature` a
    present signature is still verified when keys are given (a bad signature is never ignored).
    """
    path = Path(path)
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ContractError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    sig_path = signature_path(path)
    signed_by = None
    if sig_path.exists() and public_keys:
        try:
            signed_by = verify(content, sig_path.read_bytes(), list(public_keys))
        except SignatureError as exc:
            # `from None`: the message already carries the cause, and tools that print the innermost
            # exception (the run summary) must still show which file was rejected.
            raise ContractError(f"{path}: signature rejected ({sig_path.name}): {exc}") from None
    elif require_signature:
        if not sig_path.exists():
            raise ContractError(f"{path}: unsigned: no detached signature {sig_path.name} (sign it with cosign sign-blob)")
        raise ContractError(f"{path}: cannot verify {sig_path.name}: no trusted public keys")
    family = _parse(path, content)
    _check_sboms(path, family)
    family._source = path
    family._signed_by = signed_by
    family._sha256 = hashlib.sha256(content).hexdigest()
    return family


def load_contracts(
    directory: Path, public_keys: Sequence[bytes | str] | None = None, require_signatures: bool = True
) -> list[ImageFamily]:
    """Every ``*.yaml`` contract in `directory`, each verified and validated; any bad one rejects them all.

    `public_keys` are PEM public keys; None reads the configured ones (``QLRF_COSIGN_PUBLIC_KEYS``,
    comma-separated PEM paths) now. With `require_signatures` (the default) there must be at least one
    key, and every contract must carry a ``.sig`` that verifies against one of them.
    """
    directory = Path(directory)
    if public_keys is None:
        try:
            public_keys = configured_public_keys()
        except SignatureError as exc:
            raise ContractError(f"{directory}: {exc}") from exc
    if require_signatures and not public_keys:
        raise ContractError(
            f"{directory}: no trusted public keys to verify golden-image contracts (set QLRF_COSIGN_PUBLIC_KEYS)"
        )
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise ContractError(f"{directory}: no golden-image contracts (*.yaml)")
    families = [load_contract(f, public_keys, require_signature=require_signatures) for f in files]
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
    for fam in (f for f in families if not f.retired):
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


CURRENT_QUERY = """
WITH levels AS (SELECT * FROM (VALUES ('dev', 0), ('staging', 1), ('prod', 2)) c(channel, level)),
ranked AS (
    SELECT c.channel AS for_channel, r.*,
           row_number() OVER (PARTITION BY r.family, c.channel, r.platform, r.region ORDER BY r.version_rank DESC) AS n
    FROM registry r JOIN levels c ON r.channel_level >= c.level
    WHERE NOT r.revoked
)
SELECT family, for_channel AS channel, platform, region, version, image_ref, released_at, channel AS promoted_to
FROM ranked WHERE n = 1 ORDER BY family, channel, platform, region
"""


def current_images(registry: pa.Table) -> pa.Table:
    """The current golden image per family x channel x platform x region: the newest non-revoked version
    promoted at least that far (a prod image is also current for staging and dev if nothing newer is)."""
    from qlrf import sql

    con = sql.connect()
    con.register("registry", registry)
    return sql.table(con, CURRENT_QUERY)
