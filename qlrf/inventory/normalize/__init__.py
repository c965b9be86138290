"""Per-platform normalisers: raw platform JSON in, contract rows out.

Each module exposes `normalise(docs, *, mapping, discovered_at, account=None, region=None, suspect=())`,
where docs are (source name, parsed JSON) pairs and `suspect` names the sources whose records must be
screened for defects (see reading.py). Bad records are collected as errors, never fatal; a duplicate
asset id is an error naming both records.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from qlrf.inventory.contract import Normalised
from qlrf.inventory.normalize.reading import load_json_files
from qlrf.inventory.tags import TagMapping
from qlrf.platforms import REGISTRY, Registry


def normaliser(platform: str, registry: Registry = REGISTRY) -> Callable[..., Normalised]:
    """The platform's normaliser, named by its registry record and imported on first use."""
    return registry.get(platform).load_normaliser()


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Parsing a large export allocates millions of acyclic dicts; CPython's cyclic GC rescans them
    over and over (3x the parse time here). Nothing built here has cycles, so pause it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def normalise_files(
    platform: str,
    paths: Iterable[str | Path],
    *,
    mapping: TagMapping | None = None,
    discovered_at: datetime | None = None,
    account: str | None = None,
    region: str | None = None,
) -> Normalised:
    normalise = normaliser(platform)  # an unknown platform fails here, before any file is read
    with no_cyclic_gc():
        loaded = load_json_files(paths)
        result = normalise(
            loaded.docs,
            mapping=mapping or TagMapping(),
            discovered_at=discovered_at or datetime.now(UTC),
            account=account,
            region=region,
            suspect=frozenset(loaded.suspect),
        )
    result.errors[:0] = loaded.errors
    result.reject_duplicate_ids()
    return result
