"""Small lookup tables the predict stages join in DuckDB, built from list parameters (building them
as pyarrow tables would import pandas, ~1-4 s cold, on the million-VM path)."""

from __future__ import annotations

import duckdb

from qlrf.inventory.instance_types import InstanceTypes


def register_sizes(con: duckdb.DuckDBPyConnection, types: InstanceTypes, name: str = "sizes") -> None:
    """`name`(platform, instance_type, vcpu, memory_gib) from the instance-type table."""
    sizes = sorted(types.sizes.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT unnest($p::VARCHAR[]) AS platform, "
                "unnest($t::VARCHAR[]) AS instance_type, unnest($v::INTEGER[]) AS vcpu, unnest($m::DOUBLE[]) AS memory_gib",
                {"p": [k[0] for k, _ in sizes], "t": [k[1] for k, _ in sizes], "v": [s.vcpu for _, s in sizes],
                 "m": [s.memory_gib for _, s in sizes]})
