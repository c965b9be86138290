"""The drill journal as a DuckDB relation, scanned where it lies.

``qlrf.dr.records.drill_history`` returns a pyarrow table through ``pyarrow.parquet.read_table``,
whose first use imports ``pyarrow.dataset`` (2-4 s on this class of machine). The readers that run in
a fresh process (``qlrf dr simulate``, the scoring stage) register the same rows, for the same
window, by handing DuckDB the partition files instead; object stores and empty journals go through
``drill_history``/the schema, so every reader sees the dr_drills contract.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb

from qlrf import sql
from qlrf.dr.records import SCHEMA, TABLE, drill_history
from qlrf.platforms import PLATFORMS
from qlrf.warehouse import Warehouse

_DUCK = {"string": "VARCHAR", "double": "DOUBLE", "bool": "BOOLEAN", "timestamp[us, tz=UTC]": "TIMESTAMPTZ"}
_DDL = ", ".join(f'"{f.name}" {_DUCK[str(f.type)]}' for f in SCHEMA)


def drill_files(wh: Warehouse, as_of: date, days: int) -> list[str]:
    """The dr_drills partition files of the `days` days up to `as_of` (inclusive), every platform."""
    first, last = (as_of - timedelta(days=days)).isoformat(), as_of.isoformat()
    return [wh.file(TABLE, d, p) for d in wh.dates(TABLE) if first <= d <= last for p in PLATFORMS if wh.exists(TABLE, d, p)]


def register_drills(con: duckdb.DuckDBPyConnection, wh: Warehouse, as_of: date, days: int, name: str = "drills") -> int:
    """Register the window's drill rows as `name`; returns how many there are."""
    files = drill_files(wh, as_of, days)
    if not files:  # an empty relation with the contract's columns, declared in SQL (no Arrow import cost)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {sql.identifier(name)} ({_DDL})")
        return 0
    if wh.local:
        columns = ", ".join(f'"{c}"' for c in SCHEMA.names)  # "group" is a keyword
        # registered, not a catalog view: connections of one shared `sql.session` database never see it
        con.register(sql.identifier(name), con.read_parquet(files, union_by_name=True).select(columns))
    else:
        sql.relation(con, name, drill_history(wh, as_of, days))
    return sql.one(con, f"SELECT count(*) FROM {sql.identifier(name)}")[0]


__all__ = ["drill_files", "register_drills"]
