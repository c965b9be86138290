"""Helpers every asset uses: partition keys to dates, and check results from simple facts."""


from datetime import date, datetime

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    MetadataValue,
    MultiPartitionKey,
)

from qlrf.dates import partition_as_of


def partition_day_platform(context: AssetExecutionContext) -> tuple[date, str]:
    key = context.partition_key
    if isinstance(key, MultiPartitionKey):
        dims = key.keys_by_dimension
    else:  # "2026-11-27|aws": dimensions in name order (date, platform)
        day_s, platform = str(key).split("|")
        dims = {"date": day_s, "platform": platform}
    return date.fromisoformat(dims["date"]), dims["platform"]


def partition_day(context: AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def as_of(day: date) -> datetime:
    """The instant a day's partition is evaluated at (qlrf.dates.partition_as_of: `qlrf score` uses it too)."""
    return partition_as_of(day)


def preview(table: pa.Table, rows: int = 10) -> MetadataValue:
    """A small Markdown table for the Dagster UI (no tabulate dependency)."""
    head = table.slice(0, rows).to_pylist()
    cols = table.schema.names
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in head]
    return MetadataValue.md("\n".join(lines))


def unique_check(asset_key: str, table: pa.Table, columns: list[str], name: str = "unique_keys") -> AssetCheckResult:
    import pyarrow.compute as pc

    if table.num_rows == 0:
        dupes = 0
    else:
        counts = table.group_by(columns).aggregate([([], "count_all")])
        dupes = int(pc.sum(pc.greater(counts["count_all"], 1)).as_py() or 0)
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=name,
        passed=dupes == 0,
        metadata={"duplicate_keys": dupes, "key": ",".join(columns)},
    )


def range_check(asset_key: str, table: pa.Table, column: str, lo: float = 0, hi: float = 100) -> AssetCheckResult:
    import pyarrow.compute as pc

    col = table[column]
    bad = int(pc.sum(pc.or_(pc.less(col, lo), pc.greater(col, hi))).as_py() or 0) if table.num_rows else 0
    nulls = col.null_count
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=f"{column}_in_range",
        passed=bad == 0 and nulls == 0,
        metadata={"out_of_range": bad, "nulls": nulls, "range": f"[{lo}, {hi}]"},
    )


def rows_check(asset_key: str, table: pa.Table | int, minimum: int = 1, severity=AssetCheckSeverity.ERROR) -> AssetCheckResult:
    rows = table if isinstance(table, int) else table.num_rows
    return AssetCheckResult(
        asset_key=asset_key,
        check_name="has_rows",
        passed=rows >= minimum,
        severity=severity,
        metadata={"rows": rows, "minimum": minimum},
    )


def schema_check(asset_key: str, table: pa.Table, expected: pa.Schema) -> AssetCheckResult:
    missing = [f.name for f in expected if f.name not in table.schema.names]
    mistyped = [
        f"{f.name}: {table.schema.field(f.name).type} != {f.type}"
        for f in expected
        if f.name in table.schema.names and not table.schema.field(f.name).type.equals(f.type)
    ]
    return AssetCheckResult(
        asset_key=asset_key,
        check_name="matches_contract",
        passed=not missing and not mistyped,
        metadata={"missing": ", ".join(missing) or "-", "mistyped": "; ".join(mistyped) or "-"},
    )



def outcome_checks(asset_key: str, outcome, one_row_per_vm: bool = False):
    """Key uniqueness (and, for per-VM tables, one row per inventoried VM) from a stage's counts."""
    yield AssetCheckResult(
        asset_key=asset_key, check_name="unique_keys", passed=outcome.rows == outcome.distinct_keys,
        metadata={"duplicate_keys": outcome.rows - outcome.distinct_keys, "key": "asset_id"},
    )
    if one_row_per_vm:
        yield AssetCheckResult(
            asset_key=asset_key, check_name="one_row_per_vm", passed=outcome.rows == outcome.inventory_rows,
            metadata={"rows": outcome.rows, "inventory_rows": outcome.inventory_rows},
        )
