"""The normalised inventory contract: the one shape every connector and importer must produce.

Everything downstream (baselines, drift, compliance, DR, plans, dashboards) reads only these
tables, which is what lets a live estate and a file export be indistinguishable.
Bump CONTRACT_VERSION on any change a reader could notice; it is written into every Parquet file.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from qlrf.platforms import PLATFORMS as _REGISTRY_PLATFORMS

if TYPE_CHECKING:
    import pyarrow as pa

# 1.1 (issue 14): `org` and `project`, stamped from policy/tenancy.yaml when the partition is written.
# 1.0 partitions have neither: readers go through qlrf.tenancy.model.relation, which fills them from the
# mapping at read time (no migration of old files).
CONTRACT_VERSION = "1.1"

# The platforms come from the registry (qlrf/platforms.py); re-exported here because every reader
# of the contract needs them and they are part of it (the `platform` column's values).
PLATFORMS: tuple[str, ...] = _REGISTRY_PLATFORMS
STATES: tuple[str, ...] = ("running", "stopped", "terminated", "other")


def _build_schemas() -> dict:
    """The pyarrow schemas, built on first use: importing pyarrow costs ~0.2 s, which a connector
    process (`qlrf discover`) or the normaliser CLI should not pay before it needs a table."""
    import pyarrow as pa

    _TS = pa.timestamp("us", tz="UTC")
    INVENTORY_SCHEMA = pa.schema(
        [
            pa.field("asset_id", pa.string(), nullable=False),
            pa.field("platform", pa.string(), nullable=False),
            pa.field("account", pa.string(), nullable=False),
            pa.field("region", pa.string(), nullable=False),
            pa.field("zone", pa.string()),
            pa.field("name", pa.string(), nullable=False),
            pa.field("state", pa.string(), nullable=False),
            pa.field("image_ref", pa.string()),
            pa.field("instance_type", pa.string()),
            pa.field("launched_at", _TS),
            pa.field("tags", pa.map_(pa.string(), pa.string())),
            pa.field("group", pa.string()),
            pa.field("site", pa.string()),
            pa.field("environment", pa.string()),
            pa.field("owner", pa.string()),
            pa.field("public_ip", pa.bool_()),
            pa.field("discovered_at", _TS, nullable=False),
            # Tenancy (1.1): nullable because the normalisers do not know it; discovery stamps each batch
            # (qlrf/inventory/columnar.py) before the inventory asset writes it.
            pa.field("org", pa.string()),
            pa.field("project", pa.string()),
        ],
        metadata={"qlrf.inventory.contract": "inventory", "qlrf.contract_version": CONTRACT_VERSION},
    )

    SNAPSHOT_SCHEMA = pa.schema(
        [
            pa.field("asset_id", pa.string(), nullable=False),
            pa.field("platform", pa.string(), nullable=False),
            pa.field("snapshot_id", pa.string(), nullable=False),
            pa.field("source_id", pa.string()),
            pa.field("region", pa.string()),
            pa.field("created_at", _TS, nullable=False),
        ],
        metadata={"qlrf.inventory.contract": "snapshots", "qlrf.contract_version": CONTRACT_VERSION},
    )
    return {"INVENTORY_SCHEMA": INVENTORY_SCHEMA, "SNAPSHOT_SCHEMA": SNAPSHOT_SCHEMA}


@functools.cache
def _schemas() -> dict:
    return _build_schemas()


def __getattr__(name: str):
    """INVENTORY_SCHEMA and SNAPSHOT_SCHEMA are module attributes, built lazily (PEP 562)."""
    if name in ("INVENTORY_SCHEMA", "SNAPSHOT_SCHEMA"):
        return _schemas()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _where(source: str, index: int | None) -> str:
    where = source or "<input>"
    return where if index is None else f"{where} record #{index}"


class RecordError(ValueError):
    """A raw record that cannot be normalised; carries where it came from so the user can find it."""

    def __init__(self, message: str, *, source: str = "", index: int | None = None, record_id: str = ""):
        self.source = source
        self.index = index
        self.record_id = record_id
        self.message = message
        where = _where(source, index)
        if record_id:
            where += f" ({record_id})"
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # pickled as its parts (normalisation workers send errors back to the parent)
        return _record_error, (self.message, self.source, self.index, self.record_id)


def _record_error(message: str, source: str, index: int | None, record_id: str) -> RecordError:
    return RecordError(message, source=source, index=index, record_id=record_id)


@dataclass
class Normalised:
    """Rows produced from one or more raw inputs, plus every record that was rejected."""

    vms: list[dict] = field(default_factory=list)
    snapshots: list[dict] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    # Whole scopes (region, subscription, project, vCenter) a live connector could not read: {scope, reason}.
    failed_scopes: list[dict] = field(default_factory=list)
    # Other discovery facts a connector found (images, scaling groups...): table name -> rows.
    facts: dict[str, list[dict]] = field(default_factory=dict)
    # Where each VM row came from, (source, index), parallel to `vms` for rows added with add_vm; it is
    # what lets a duplicate id name both records.
    origins: list[tuple[str, int | None]] = field(default_factory=list)

    def add_vm(self, row: dict, source: str, index: int | None) -> None:
        self._align_origins()
        self.vms.append(row)
        self.origins.append((source, index))

    def _align_origins(self) -> None:
        """Rows appended straight to `vms` (live connectors) have no origin; keep the lists parallel."""
        del self.origins[len(self.vms):]
        self.origins.extend([("", None)] * (len(self.vms) - len(self.origins)))

    def reject_duplicate_ids(self) -> None:
        """Keep the first row of each asset id and reject every later one, naming both records.

        Two rows for one id make every per-VM count wrong downstream, and nothing here can tell which
        of the two is true; the first is kept so a re-listed page does not lose the VM, and the
        error makes the run exit non-zero so a person looks."""
        self._align_origins()
        first: dict[str, int] = {}
        keep_vms, keep_origins = [], []
        for row, origin in zip(self.vms, self.origins, strict=True):
            asset_id = row["asset_id"]
            if asset_id not in first:
                first[asset_id] = len(keep_vms)
                keep_vms.append(row)
                keep_origins.append(origin)
                continue
            seen = _where(*keep_origins[first[asset_id]])
            self.errors.append(
                RecordError(f"duplicate asset id {asset_id}: first seen at {seen}", source=origin[0], index=origin[1], record_id=asset_id)
            )
        self.vms, self.origins = keep_vms, keep_origins

    def extend(self, other: Normalised) -> None:
        self._align_origins()
        other._align_origins()
        self.origins.extend(other.origins)
        self.vms.extend(other.vms)
        self.snapshots.extend(other.snapshots)
        self.errors.extend(other.errors)
        self.failed_scopes.extend(other.failed_scopes)
        for name, rows in other.facts.items():
            self.facts.setdefault(name, []).extend(rows)


def inventory_table(rows: list[dict]) -> pa.Table:
    """Build a contract-conformant table; fails loudly if a row breaks the contract."""
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=_schemas()["INVENTORY_SCHEMA"])


def snapshot_table(rows: list[dict]) -> pa.Table:
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=_schemas()["SNAPSHOT_SCHEMA"])


def json_default(value: object) -> str:
    """JSON encoder hook: timestamps as ISO 8601 UTC with a Z, without copying each row."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def facts_table(rows: list[dict]) -> pa.Table:
    """Discovery facts vary by platform; nested values are kept as JSON text so the schema stays flat."""
    import json

    import pyarrow as pa

    if not rows:
        return pa.table({"platform": pa.array([], pa.string())})
    flat = [{k: json.dumps(v, default=str, sort_keys=True) if isinstance(v, dict | list) else v for k, v in r.items()} for r in rows]
    keys = sorted({k for r in flat for k in r})
    return pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in flat])
