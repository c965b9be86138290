"""A discovery result in columns: what crosses the step boundaries of the discovery fan-out.

The fan-out hands a partition's rows over twice (batch -> merge -> inventory), and with any executor
but the in-memory one each hand-over is a pickle. 426,400 EC2 rows as a list of dicts pickled in 9.1 s
and unpickled in 3.9 s (measured on the million-VM bench estate); as Arrow tables the same rows took
0.12 s and 0.09 s. So a batch becomes contract-typed columns once, as soon as it is discovered, and
stays columns to the warehouse: the tenancy stamp (org/project) and the contract's schema are applied
there, so a row that breaks the contract fails its step as it failed the inventory step before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qlrf.inventory.contract import Normalised, RecordError, _where, inventory_table, snapshot_table

if TYPE_CHECKING:
    import pyarrow as pa

    from qlrf.tenancy.model import Tenancy


@dataclass
class Discovered:
    """Rows of one or more batches as tables (inventory and snapshot contracts), plus what was refused."""

    vms: pa.Table
    snapshots: pa.Table
    # (source, index) of every vms row, parallel to it: what lets a duplicate id name both records.
    origins: pa.Table
    errors: list[RecordError] = field(default_factory=list)
    failed_scopes: list[dict] = field(default_factory=list)
    facts: dict[str, list[dict]] = field(default_factory=dict)
    # (platform, scope) pairs the tenancy file does not map (their VMs went to "unassigned"), sorted.
    unmapped: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, found: Normalised, tenancy: Tenancy) -> Discovered:
        """`found` stamped with its organisations and typed by the contract (fails on a contract break)."""
        import pyarrow as pa

        unmapped = tenancy.stamp(found.vms)
        origins = _origins(found)
        return cls(
            vms=inventory_table(found.vms),
            snapshots=snapshot_table(found.snapshots),
            origins=pa.Table.from_arrays(
                [pa.array([o[0] for o in origins], pa.string()), pa.array([o[1] for o in origins], pa.int64())],
                names=["source", "index"],
            ),
            errors=list(found.errors),
            failed_scopes=list(found.failed_scopes),
            facts={k: list(v) for k, v in found.facts.items()},
            unmapped=unmapped,
        )

    @classmethod
    def concat(cls, parts: Sequence[Discovered]) -> Discovered:
        """The parts one after the other (order kept; duplicates are the caller's to reject)."""
        import pyarrow as pa

        facts: dict[str, list[dict]] = {}
        for part in parts:
            for name, rows in part.facts.items():
                facts.setdefault(name, []).extend(rows)
        return cls(
            vms=_concat([p.vms for p in parts]),
            snapshots=_concat([p.snapshots for p in parts]),
            origins=_concat([p.origins for p in parts]) if parts else pa.table({"source": pa.array([], pa.string()),
                                                                                "index": pa.array([], pa.int64())}),
            errors=[e for p in parts for e in p.errors],
            failed_scopes=[f for p in parts for f in p.failed_scopes],
            facts=facts,
            unmapped=sorted({u for p in parts for u in p.unmapped}),
        )

    @classmethod
    def empty(cls, tenancy: Tenancy) -> Discovered:
        return cls.of(Normalised(), tenancy)

    def reject_duplicate_ids(self) -> None:
        """Keep the first row of each asset id and reject every later one, naming both records
        (as Normalised.reject_duplicate_ids does); one vectorised count when, as usual, there are none."""
        import pyarrow.compute as pc

        ids = self.vms["asset_id"]
        if pc.count_distinct(ids).as_py() == self.vms.num_rows:
            return
        first: dict[str, int] = {}
        keep: list[int] = []
        sources, indexes = self.origins["source"].to_pylist(), self.origins["index"].to_pylist()
        for position, asset_id in enumerate(ids.to_pylist()):
            if asset_id not in first:
                first[asset_id] = position
                keep.append(position)
                continue
            seen = _where(sources[first[asset_id]], indexes[first[asset_id]])
            self.errors.append(RecordError(f"duplicate asset id {asset_id}: first seen at {seen}",
                                           source=sources[position], index=indexes[position], record_id=asset_id))
        self.vms, self.origins = self.vms.take(keep), self.origins.take(keep)


def _origins(found: Normalised) -> list[tuple[str, int | None]]:
    """Origins parallel to the rows (live connectors append rows without one: ("", None))."""
    origins = found.origins[: len(found.vms)]
    return origins + [("", None)] * (len(found.vms) - len(origins))


def _concat(tables: list[pa.Table]) -> pa.Table:
    import pyarrow as pa

    return pa.concat_tables(tables).combine_chunks() if len(tables) > 1 else tables[0]
