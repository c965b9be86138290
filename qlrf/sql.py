"""A small DuckDB session helper: fleet math runs as SQL over Arrow tables or Parquet files.

DuckDB does joins and roll-ups over a million VMs in well under a second with little memory
(see NOTES-platform reference figures), where row-by-row Python would take tens of seconds.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa


def connect(threads: int | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET TimeZone = 'UTC'")
    return con


def relation(con: duckdb.DuckDBPyConnection, name: str, source: pa.Table | str) -> None:
    """Expose an Arrow table, or a Parquet path/glob, as a view called `name`."""
    if isinstance(source, str):
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{source}', hive_partitioning = false)")
    else:
        con.register(name, source)


def table(con: duckdb.DuckDBPyConnection, query: str, params: dict | list | None = None) -> pa.Table:
    return con.sql(query, params=params).to_arrow_table()


def copy_to_parquet(con: duckdb.DuckDBPyConnection, query: str, metadata: dict[str, str] | None = None):
    """A Warehouse.write_with writer that streams `query` into Parquet (zstd) with key-value metadata."""

    def writer(path: str, filesystem) -> None:
        kv = ""
        if metadata:
            pairs = ", ".join(f"{quote(k)}: {quote(v)}" for k, v in metadata.items())
            kv = f", KV_METADATA {{{pairs}}}"
        con.execute(f"COPY ({query}) TO {quote(path)} (FORMAT parquet, COMPRESSION zstd{kv})")

    return writer


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def rows(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple]:
    """All result rows, fully fetched so the connection is free for the next statement."""
    return con.sql(query).fetchall()


def one(con: duckdb.DuckDBPyConnection, query: str) -> tuple:
    return rows(con, query)[0]
