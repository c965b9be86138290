"""May a new golden-image registry replace the one in force? One line per reason it may not.

Signatures prove who wrote a contract, not that it is the newest or sane: a validly signed
contract can be an old one replayed, can have every version dated in the future (so the registry
comes out empty and drift reports nothing), can drop a revocation or a whole family. These checks
compare the new registry with the baseline in force (:mod:`qlrf.baselines.state`) *before* it is
written; any problem refuses the whole registry and the previous partition stays in force.

Rules, per family of the baseline in force:
- the serial never goes down (replay), and one serial never names two different contracts;
- a family never disappears: deleting its contract is refused; retiring it takes a signed
  ``retired: true`` contract;
- its newest visible version never moves backwards (and never vanishes: "no version visible");
- a revocation is sticky: a version revoked in force stays revoked unless the new contract carries
  a signed ``unrevoke`` entry for it.
And the new registry is never empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa

from qlrf.baselines.contracts import ImageFamily, registry_table
from qlrf.baselines.state import BaselineState, FamilyState, InForce, in_force, partition_metadata
from qlrf.baselines.versions import version_key
from qlrf.warehouse import Warehouse

RETIRE_HINT = "retire a family with a signed contract carrying `retired: true`"
UNREVOKE_HINT = "un-revoke only with a signed `unrevoke` entry"


def replacement_problems(new: BaselineState, current: InForce | None) -> list[str]:
    """Every reason `new` must not replace `current` (empty list: it may)."""
    problems = [] if new.rows else ["the new registry is empty: no golden-image version is visible (all released in the future?)"]
    if current is None:
        return problems
    for name, old in sorted(current.state.families.items()):
        fresh = new.families.get(name)
        if fresh is None:
            if not old.retired:
                problems.append(
                    f"family {name} deleted: its contract is gone (serial {old.serial} in force since {current.day}); {RETIRE_HINT}"
                )
            continue
        problems += _family_problems(name, old, fresh, current.day)
    return problems


def _family_problems(name: str, old: FamilyState, new: FamilyState, since: str) -> list[str]:
    where = new.source or name
    replay = _replay(where, old, new, since)
    if replay:
        return [replay]  # an old contract: everything else it says is beside the point
    if new.retired or old.retired:
        return []
    if new.newest is None:
        return [f"{where}: family {name} lost: no version visible (released in the future?); {old.newest} is in force since {since}"]
    problems = []
    if old.newest is not None and version_key(new.newest) < version_key(old.newest):
        problems.append(f"{where}: version moved backwards: newest {new.newest} < {old.newest} in force since {since}")
    for version in old.revoked:
        if version not in new.revoked and version not in new.unrevoked:
            problems.append(f"{where}: revocation of {name} {version} dropped (revoked in force since {since}); {UNREVOKE_HINT}")
    return problems


def _replay(where: str, old: FamilyState, new: FamilyState, since: str) -> str | None:
    if old.serial is None or new.serial is None:
        return None
    if new.serial < old.serial:
        return f"{where}: replayed contract refused: serial {new.serial} is older than serial {old.serial} in force since {since}"
    if new.serial == old.serial and old.sha256 and new.sha256 != old.sha256:
        return f"{where}: serial {new.serial} is the one in force since {since} but the content differs: a changed contract needs a higher serial"
    return None


@dataclass(frozen=True)
class Review:
    """A registry built from verified contracts, set against the baseline in force for its day."""

    registry: pa.Table
    state: BaselineState
    current: InForce | None
    problems: list[str]

    @property
    def metadata(self) -> dict:
        """What the partition must carry (retired families of the baseline in force are remembered)."""
        return partition_metadata(self.state.carrying_retired(self.current.state if self.current else None))


def review(families: list[ImageFamily], wh: Warehouse, day: date | str, as_of: datetime) -> Review:
    """Build the day's registry as of `as_of` and list why it may not replace the baseline in force.

    The golden_images asset writes `registry` only when `problems` is empty; `qlrf contracts verify
    --against-warehouse` asks the same question before anyone ships the contracts."""
    registry = registry_table(families, as_of)
    state = BaselineState.from_contracts(families, registry)
    current = in_force(wh, day)
    return Review(registry, state, current, replacement_problems(state, current))
