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
from qlrf.tenancy import scoping
from qlrf.warehouse import PartitionMissing, Warehouse


class ToolInputError(ValueError):
    """Arguments that pass the schema but mean nothing here (an unparsable package range, say)."""


@dataclass(frozen=True)
class ToolContext:
    warehouse: Warehouse
    audit: AuditLog
    tasks: TaskStore | None = None
    platforms: tuple[str, ...] = tuple(PLATFORMS)
    # The caller's readable organisations (issue 14): None = unrestricted (system use). Every warehouse
    # read below keeps only these organisations' rows (qlrf.tenancy.scoping); a model cannot widen it.
    orgs: tuple[str, ...] | None = None


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
    tool touches only the columns its query names, even over a million-VM day; the partitions are one
    relation (columns matched by name), so a query is one scan over all of them."""
    source, derive = scoping.source(table, ctx.orgs)
    day_s = day_of(ctx, source, day)
    present = [p for p in ctx.platforms if ctx.warehouse.exists(source, day_s, p)]
    if not present:
        raise PartitionMissing(f"{source}: no platform partition materialised for {day_s}")
    files = [ctx.warehouse.source(source, day_s, platform) for platform in present]  # one relation, one scan
    if ctx.orgs is None:
        sql.relation(con, "t", files)
    else:
        sql.relation(con, "t__files", files)
        scoping.restrict(con, "t__files", "t", source, ctx.orgs, derive)
    facts = {"table": table, "day": day_s, "partitions": [f"{day_s}|{p}" for p in present]}
    if ctx.orgs is not None:
        facts["orgs"] = sorted(ctx.orgs)
    return facts


def select_day(ctx: ToolContext, table: str, day: date | None, query: str, params: dict) -> tuple[list[dict], dict]:
    """(rows, facts): `query` over the day's partitions of `table`, seen as the relation `t`."""
    with sql.session() as con:
        facts = day_view(con, ctx, table, day)
        return sql.table(con, query, params).to_pylist(), facts
