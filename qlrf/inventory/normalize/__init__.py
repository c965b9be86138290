"""Per-platform normalisers: raw platform JSON in, contract rows out.

Each module exposes `normalise(docs, *, mapping, discovered_at, account=None, region=None)`, where
docs are (source name, parsed JSON) pairs. Bad records are collected as errors, never fatal.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from qlrf.inventory.contract import Normalised, RecordError
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


def load_json_files(paths: Iterable[str | Path]) -> tuple[list[tuple[str, object]], list[RecordError]]:
    docs, errors = [], []
    for path in paths:
        try:
            with open(path, "rb") as fh:
                docs.append((str(path), json.load(fh)))
        except (OSError, json.JSONDecodeError) as exc:
            errors.append(RecordError(f"cannot read JSON: {exc}", source=str(path)))
    return docs, errors


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
        docs, errors = load_json_files(paths)
        result = normalise(
            docs,
            mapping=mapping or TagMapping(),
            discovered_at=discovered_at or datetime.now(UTC),
            account=account,
            region=region,
        )
    result.errors[:0] = errors
    return result
