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


def select_day(ctx: ToolContext, table: str, day: date | None, query: str, params: dict) -> tuple[list[dict], dict]:
    """(rows, facts): `query` over every present platform partition of `table` for the day, as relation `t`."""
    day_s = day_of(ctx, table, day)
    present = [p for p in ctx.platforms if ctx.warehouse.exists(table, day_s, p)]
    con = sql.connect(threads=1)
    sql.relation(con, "t", ctx.warehouse.read_platforms(table, day_s, present))
    rows = sql.table(con, query, params).to_pylist()
    return rows, {"table": table, "day": day_s, "partitions": [f"{day_s}|{p}" for p in present]}
