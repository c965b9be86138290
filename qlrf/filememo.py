"""Facts computed from local files, remembered per process while the files stay the same.

Its own module, with nothing heavy imported: the tenancy model keeps duckdb and pyarrow out of its
import, and uses it too. ``qlrf.sql`` re-exports both names for the warehouse readers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def files_key(paths: list[str] | tuple[str, ...]) -> tuple:
    """Identity of local files as they are now (path, size, mtime in ns): a key for facts computed
    from them, so a rewritten file (size or mtime changes) is never answered from an old result."""
    key = []
    for path in paths:
        st = os.stat(path)
        key.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(key)


class FilesMemo:
    """Facts computed from local Parquet files, remembered per process while the files stay the same.

    A warehouse day does not change under a question, but every question of a long-lived process (the
    API server, an eval) would rescan it for the same facts. Keyed by :func:`files_key` plus what else
    the facts depend on; at most `cap` entries (the oldest goes first). Two threads asking at once may
    both compute: the result is the same, the last one kept."""

    def __init__(self, cap: int):
        self._cap = cap
        self._entries: dict[tuple, Any] = {}

    def get(self, paths: list[str] | tuple[str, ...], extra: object, compute: Callable[[], Any]) -> Any:
        key = (files_key(paths), extra)
        if key not in self._entries:
            value = compute()
            while len(self._entries) >= self._cap:
                self._entries.pop(next(iter(self._entries)), None)
            self._entries[key] = value
        return self._entries[key]


__all__ = ["FilesMemo", "files_key"]
