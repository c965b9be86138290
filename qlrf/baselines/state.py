"""The baseline in force: what a golden_images partition promised, kept with the partition itself.

Every accepted golden_images partition carries, in its Parquet key-value metadata, one small record
per image family: the contract's ``serial`` and SHA-256, whether it is retired, its newest visible
version, its effective revocations and its explicit un-revocations. The next partition is compared
with that record before it may be written (:mod:`qlrf.baselines.guard`), so the memory of "the
highest serial seen" and "what was revoked" lives with the warehouse, not in a process or a file
an attacker could swap with the contracts.

A partition written before this record existed is read back from its rows (no serials, so no
replay check against it, but lost families, dropped revocations and versions going backwards are
still caught).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import date

import pyarrow as pa

from qlrf.baselines.contracts import ImageFamily
from qlrf.baselines.versions import version_key
from qlrf.warehouse import Warehouse

TABLE = "golden_images"
METADATA_KEY = "baseline"


@dataclass(frozen=True)
class FamilyState:
    """One family as a partition saw it; `serial`/`sha256` are None for a partition without the record."""

    serial: int | None = None
    sha256: str | None = None
    retired: bool = False
    newest: str | None = None
    revoked: tuple[str, ...] = ()
    unrevoked: tuple[str, ...] = ()
    source: str | None = None


@dataclass(frozen=True)
class BaselineState:
    """Every family of one golden_images partition, and how many registry rows it has."""

    families: dict[str, FamilyState] = field(default_factory=dict)
    rows: int = 0

    def to_dict(self) -> dict:
        return {"rows": self.rows, "families": {name: asdict(f) for name, f in sorted(self.families.items())}}

    @classmethod
    def from_dict(cls, doc: dict) -> BaselineState:
        families = {
            name: FamilyState(**{**f, "revoked": tuple(f.get("revoked", ())), "unrevoked": tuple(f.get("unrevoked", ()))})
            for name, f in doc.get("families", {}).items()
        }
        return cls(families=families, rows=int(doc.get("rows", 0)))

    @classmethod
    def from_contracts(cls, families: list[ImageFamily], registry: pa.Table) -> BaselineState:
        """The state a registry built from `families` would put in force."""
        seen = _visible(registry)
        out = {}
        for fam in families:
            newest, revoked = seen.get(fam.family, (None, ()))
            out[fam.family] = FamilyState(
                serial=fam.serial,
                sha256=fam.sha256,
                retired=fam.retired,
                newest=newest,
                revoked=revoked,
                unrevoked=tuple(sorted(u.version for u in fam.unrevoke)),
                source=str(fam.source) if fam.source else None,
            )
        return cls(families=out, rows=registry.num_rows)

    @classmethod
    def from_registry(cls, registry: pa.Table) -> BaselineState:
        """A partition written without the record: rebuild what its rows can tell."""
        return cls(
            families={name: FamilyState(newest=newest, revoked=revoked) for name, (newest, revoked) in _visible(registry).items()},
            rows=registry.num_rows,
        )

    def carrying_retired(self, in_force: BaselineState | None) -> BaselineState:
        """This state plus every retired family of `in_force` whose contract is gone: the highest serial
        seen for a family is remembered, so an old contract of a retired family cannot come back."""
        if in_force is None:
            return self
        kept = {n: f for n, f in in_force.families.items() if f.retired and n not in self.families}
        return replace(self, families={**self.families, **kept})


def _visible(registry: pa.Table) -> dict[str, tuple[str, tuple[str, ...]]]:
    """family -> (newest visible version, versions revoked as of the registry's day)."""
    versions: dict[str, set[str]] = {}
    revoked: dict[str, set[str]] = {}
    for row in registry.select(["family", "version", "revoked"]).to_pylist():
        versions.setdefault(row["family"], set()).add(row["version"])
        if row["revoked"]:
            revoked.setdefault(row["family"], set()).add(row["version"])
    return {
        fam: (max(vs, key=version_key), tuple(sorted(revoked.get(fam, ()), key=version_key)))
        for fam, vs in versions.items()
    }


@dataclass(frozen=True)
class InForce:
    """The accepted partition a new one is compared with: its date and its state."""

    day: str
    state: BaselineState


def in_force(wh: Warehouse, day: date | str) -> InForce | None:
    """The newest accepted golden_images partition on or before `day` (the day itself when it is being
    re-run, so a re-run cannot roll it back), or None when there is none yet.

    No age limit: however old, it is the last baseline anyone accepted, and what it promised holds."""
    found = wh.latest_on_or_before(TABLE, day)
    if found is None:
        return None
    record = wh.run_metadata(TABLE, found).get(METADATA_KEY)
    state = BaselineState.from_dict(record) if record else BaselineState.from_registry(wh.read(TABLE, found))
    return InForce(day=found, state=state)


def partition_metadata(state: BaselineState) -> dict:
    """What to pass as `metadata=` to :meth:`Warehouse.write` so the next run can read it back."""
    return {METADATA_KEY: state.to_dict()}
