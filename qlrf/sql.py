"""A small DuckDB session helper: fleet math runs as SQL over Arrow tables or Parquet files.

DuckDB does joins and roll-ups over a million VMs in well under a second with little memory
(see NOTES-platform reference figures), where row-by-row Python would take tens of seconds.

No value is ever pasted into SQL text: paths, dates and user values travel as named parameters
(`$name`) or as registered relations. A warehouse under a path with a quote in it once broke every
scoring stage; a waiver or tag value could have rewritten a query. SQL text here is code only.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping

import duckdb
import pyarrow as pa

from qlrf.filememo import FilesMemo, files_key  # noqa: F401  (the readers' memo, re-exported)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_METADATA_KEY = re.compile(r"[A-Za-z0-9_.\-]+")


_SHARED: duckdb.DuckDBPyConnection | None = None
_SHARED_LOCK = threading.Lock()


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """A new in-memory database of its own (~50-80 ms to open here; see `session` for the cheap kind)."""
    config: dict[str, str | int] = {}
    if threads:
        config["threads"] = int(threads)
    if memory_limit:
        config["memory_limit"] = str(memory_limit)
    return _session_defaults(duckdb.connect(":memory:", config=config))


def session() -> duckdb.DuckDBPyConnection:
    """A new connection (cursor) to one process-wide in-memory database: ~0.5 ms instead of ~60 ms.

    A scoring stage used to open three databases per partition (stage, per-VM gate, scores gate), a
    fifth of a million-VM stage's time. Safe to share because what a stage defines is connection-local:
    `relation` registers (never a catalog view) and the stages create TEMP views and tables only."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = duckdb.connect(":memory:")
        return _session_defaults(_SHARED.cursor())


def _session_defaults(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # a bar on a terminal's stderr is noise in a batch stage
    return con


def identifier(name: str) -> str:
    """Relation names are code, never data; refuse anything that is not a plain identifier."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a SQL identifier: {name!r}")
    return name


def relation(con: duckdb.DuckDBPyConnection, name: str, source: pa.Table | str | list[str]) -> None:
    """Expose an Arrow table, a Parquet path or a list of them (one relation, columns matched by name)
    as a connection-local view called `name`.

    The path goes to DuckDB as a value through the relational API (`read_parquet` still streams and
    prunes columns), so quotes, spaces, semicolons or glob characters in it are just characters.
    Registered, not created as a catalog view, so connections of one `session` database never see
    each other's names."""
    identifier(name)
    if isinstance(source, list):
        source = con.read_parquet(source, hive_partitioning=False, union_by_name=True)
    elif isinstance(source, str):
        source = con.read_parquet(source, hive_partitioning=False)
    con.register(name, source)


def table(con: duckdb.DuckDBPyConnection, query: str, params: Mapping | list | None = None) -> pa.Table:
    return con.sql(query, params=_params(params)).to_arrow_table()


def _params(params: Mapping | list | None) -> dict | list | None:
    if params is None or isinstance(params, list):
        return params
    return dict(params) or None


def copy_to_parquet(
    con: duckdb.DuckDBPyConnection, query: str, metadata: dict[str, str] | None = None, params: Mapping | None = None,
    zstd_level: int | None = None, row_group_size: int | None = None,
):
    """A Warehouse.write_with writer that streams `query` into Parquet (zstd) with key-value metadata.

    The target path and every metadata value are parameters; metadata keys are code and checked.
    `zstd_level` (1-22, DuckDB's default 3 when None): level 1 costs ~30 % less CPU for wide tables.
    `row_group_size` (rows; DuckDB's default 122,880 when None): smaller groups of sorted rows let a
    filtered scan skip the groups whose min/max statistics exclude the filter."""

    def writer(path: str, filesystem) -> None:
        values = dict(params or {})
        kv = ""
        if metadata:
            pairs = []
            for i, (key, value) in enumerate(metadata.items()):
                if not _METADATA_KEY.fullmatch(key):
                    raise ValueError(f"not a Parquet metadata key: {key!r}")
                values[f"qlrf_kv{i}"] = str(value)
                pairs.append(f"'{key}': $qlrf_kv{i}")
            kv = f", KV_METADATA {{{', '.join(pairs)}}}"
        values["qlrf_path"] = path
        level = f", COMPRESSION_LEVEL {int(zstd_level)}" if zstd_level is not None else ""
        level += f", ROW_GROUP_SIZE {int(row_group_size)}" if row_group_size is not None else ""
        con.execute(f"COPY ({query}) TO $qlrf_path (FORMAT parquet, COMPRESSION zstd{level}{kv})", values)

    return writer


def rows(con: duckdb.DuckDBPyConnection, query: str, params: Mapping | None = None) -> list[tuple]:
    """All result rows, fully fetched so the connection is free for the next statement."""
    return con.sql(query, params=_params(params)).fetchall()


def one(con: duckdb.DuckDBPyConnection, query: str, params: Mapping | None = None) -> tuple:
    return rows(con, query, params)[0]
