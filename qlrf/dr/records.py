"""The ``dr_drills`` table: one row per VM per drill, what the drill measured. The seam between the
drill runner (writes) and readiness, simulation, history and the report (read).

Stored in the warehouse by the day the drill *started* (UTC) and the platform:
``dr_drills/date=D/platform=P/part.parquet``. A day can hold several drills, so a write merges the
new rows with the partition already there (a drill's rows replace that drill's earlier rows, if any:
re-recording a drill is idempotent), validates the result, then replaces the file atomically
(Warehouse.write). History readers scan a window of days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from qlrf.platforms import PLATFORMS
from qlrf.warehouse import Warehouse

TABLE = "dr_drills"
OUTCOMES: tuple[str, ...] = ("passed", "failed", "timed_out", "deviated")
_TS = pa.timestamp("us", tz="UTC")

SCHEMA = pa.schema([
    pa.field("drill_id", pa.string(), nullable=False),        # one execution of a drill plan
    pa.field("plan_id", pa.string(), nullable=False),
    pa.field("plan_hash", pa.string(), nullable=False),
    pa.field("asset_id", pa.string(), nullable=False),        # the protected VM
    pa.field("platform", pa.string(), nullable=False),
    pa.field("site", pa.string()),
    pa.field("environment", pa.string()),
    pa.field("group", pa.string()),
    pa.field("instance_type", pa.string()),
    pa.field("source_region", pa.string()),
    pa.field("target", pa.string()),                          # DR region / paired location / datacenter
    pa.field("restore_point_id", pa.string()),
    pa.field("restore_point_at", _TS),
    pa.field("started_at", _TS, nullable=False),              # drill start
    pa.field("healthy_at", _TS),                              # restored VM healthy (None: never)
    pa.field("ended_at", _TS, nullable=False),                # cleaned up
    pa.field("rto_seconds", pa.float64()),                    # healthy_at - started_at
    pa.field("rpo_achieved_seconds", pa.float64()),           # started_at - restore_point_at
    pa.field("rto_objective_seconds", pa.float64()),
    pa.field("rpo_objective_seconds", pa.float64()),
    pa.field("outcome", pa.string(), nullable=False),         # passed | failed | timed_out | deviated
    pa.field("reason", pa.string()),                          # why, naming the step, when not passed
    pa.field("steps", pa.string()),                           # JSON list: {step, started_at, seconds, status, detail}
    pa.field("cleaned_up", pa.bool_(), nullable=False),
    pa.field("cleanup", pa.string()),                         # JSON list of resources removed
])


class DrillRecordError(ValueError):
    """Rows that do not fit the dr_drills contract; the message names the row and the field."""


def drills_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows -> a dr_drills table, validated (outcomes, required fields, one row per drill x VM)."""
    rows = list(rows)
    for i, row in enumerate(rows):
        extra = set(row) - set(SCHEMA.names)
        if extra:
            raise DrillRecordError(f"dr_drills row {i}: unknown field(s) {sorted(extra)}")
        if row.get("outcome") not in OUTCOMES:
            raise DrillRecordError(f"dr_drills row {i}: outcome {row.get('outcome')!r} is not one of {OUTCOMES}")
    try:
        table = pa.Table.from_pylist(rows, schema=SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DrillRecordError(f"dr_drills: {exc}") from exc
    return validate(table)


def validate(table: pa.Table) -> pa.Table:
    for name in (f.name for f in SCHEMA if not f.nullable):
        if table.column(name).null_count:
            raise DrillRecordError(f"dr_drills: {name} is null in {table.column(name).null_count} row(s)")
    keys = pc.binary_join_element_wise(table.column("drill_id"), table.column("asset_id"), "\x1f")
    if pc.count_distinct(keys).as_py() != table.num_rows:
        raise DrillRecordError("dr_drills: more than one row for the same drill_id and asset_id")
    return table


def record_drill(warehouse: Warehouse, rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """Merge a drill's rows into their (start day, platform) partitions; returns the files written."""
    new = drills_table(rows)
    written = []
    for day, platform in sorted({(r["started_at"].date(), r["platform"]) for r in new.to_pylist()}):
        mask = pc.and_(pc.equal(pc.cast(new.column("started_at"), pa.date32()), pa.scalar(day, pa.date32())),
                       pc.equal(new.column("platform"), platform))
        part = new.filter(mask)
        if warehouse.exists(TABLE, day, platform):
            old = warehouse.read(TABLE, day, platform)
            ids = pa.array(sorted(set(part.column("drill_id").to_pylist())))
            old = old.filter(pc.invert(pc.is_in(old.column("drill_id"), value_set=ids)))
            part = pa.concat_tables([old.select(SCHEMA.names).cast(SCHEMA), part])
        written.append(warehouse.write(TABLE, validate(part), day, platform))
    return written


def drill_history(warehouse: Warehouse, as_of: date, days: int = 180, platform: str | None = None) -> pa.Table:
    """Every drill row that started within ``days`` before the end of ``as_of`` (inclusive); empty, with
    the schema, when there are none. Time is an input: ``as_of`` is the day being scored."""
    first = (as_of - timedelta(days=days)).isoformat()
    tables = []
    for day in warehouse.dates(TABLE):
        if not first <= day <= as_of.isoformat():
            continue
        for p in [platform] if platform else PLATFORMS:
            if warehouse.exists(TABLE, day, p):
                tables.append(warehouse.read(TABLE, day, p).select(SCHEMA.names).cast(SCHEMA))
    if not tables:
        return SCHEMA.empty_table()
    return pa.concat_tables(tables)


def utc(value: datetime) -> datetime:
    """Drill timestamps are timezone-aware UTC; a naive one is refused rather than guessed."""
    if value.tzinfo is None:
        raise DrillRecordError(f"naive timestamp {value!r}: drill times must be timezone-aware (UTC)")
    return value


__all__ = ["OUTCOMES", "SCHEMA", "TABLE", "DrillRecordError", "drill_history", "drills_table", "record_drill",
           "utc", "validate"]
