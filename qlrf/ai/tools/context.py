"""What the read-only tools read from, and the one way they read a day of the warehouse.

Every warehouse read goes through fixed SQL with `$name` parameters (qlrf.sql): a model chooses
filter values, never SQL text or column names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from qlrf import sql
from qlrf.inventory.contract import PLATFORMS
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.warehouse import PartitionMissing, Warehouse


class ToolInputError(ValueError):
    """Arguments that pass the schema but mean nothing here (an unparsable package range, say)."""


@dataclass(frozen=True)
class ToolContext:
    warehouse: Warehouse
    audit: AuditLog
    tasks: TaskStore | None = None
    platforms: tuple[str, ...] = tuple(PLATFORMS)


def day_of(ctx: ToolContext, table: str, day: date | None) -> str:
    """The day asked for, or the newest materialised one: never the clock, so answers are reproducible."""
    if day is not None:
        return day.isoformat()
    days = ctx.warehouse.dates(table)
    if not days:
        raise PartitionMissing(f"{table}: no partition has been materialised")
    return days[-1]


def day_view(con, ctx: ToolContext, table: str, day: date | None) -> dict:
    """Expose every present platform partition of `table` for the day as the view `t`; returns the facts.

    Each partition is scanned where it lies (local Parquet streams and prunes columns), so a
    tool touches only the columns its query names, even over a million-VM day."""
    day_s = day_of(ctx, table, day)
    present = [p for p in ctx.platforms if ctx.warehouse.exists(table, day_s, p)]
    if not present:
        raise PartitionMissing(f"{table}: no platform partition materialised for {day_s}")
    for platform in present:
        sql.relation(con, f"t_{sql.identifier(platform)}", ctx.warehouse.source(table, day_s, platform))
    con.execute("CREATE OR REPLACE TEMP VIEW t AS " + " UNION ALL BY NAME ".join(f"SELECT * FROM t_{p}" for p in present))
    return {"table": table, "day": day_s, "partitions": [f"{day_s}|{p}" for p in present]}


def select_day(ctx: ToolContext, table: str, day: date | None, query: str, params: dict) -> tuple[list[dict], dict]:
    """(rows, facts): `query` over the day's partitions of `table`, seen as the relation `t`."""
    con = sql.connect(threads=1)
    facts = day_view(con, ctx, table, day)
    return sql.table(con, query, params).to_pylist(), facts
