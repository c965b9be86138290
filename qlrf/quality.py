"""Checks a new partition must pass *before* it replaces anything in the warehouse.

Dagster's asset checks run after an asset body returns, by which time the file would already be in
place: a duplicated inventory or a truncated export would have replaced yesterday's good partition.
So the warehouse writes every partition to a temporary name, runs its gate over that file, and only
then renames it into place; a refused partition leaves the previous file untouched and the run fails
with every problem named (Warehouse.write_with(..., gate=...)).

A gate is plain data (keys, minimum rows, expected rows, schema, value ranges, how much smaller than
the previous partition it may be), evaluated with DuckDB over the Parquet file, so it costs one scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from qlrf.envparse import environ, text

ENV_MAX_SHRINK = "QLRF_MAX_SHRINK"
DEFAULT_MAX_SHRINK = 0.2  # a partition with 20 % fewer rows than the one before it is refused


def max_shrink_from_env(env: Mapping[str, str] | None = None) -> float:
    """QLRF_MAX_SHRINK: the largest accepted drop in rows against the previous partition (0-1, 1 = off)."""
    env = environ(env)
    raw = text(env, ENV_MAX_SHRINK)
    if raw is None:
        return DEFAULT_MAX_SHRINK
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{ENV_MAX_SHRINK}={raw!r}: expected a fraction between 0 and 1") from None
    if not 0 <= value <= 1:
        raise ValueError(f"{ENV_MAX_SHRINK}={raw!r}: expected a fraction between 0 and 1")
    return value


@dataclass(frozen=True)
class Gate:
    """What a new partition of one table must satisfy; every field is optional."""

    keys: tuple[str, ...] = ()  # no two rows share these columns (and none is null)
    min_rows: int = 1  # never replace a partition with an empty one
    expected_rows: int | None = None  # e.g. one row per inventoried VM
    schema: pa.Schema | None = None  # exact column names and types
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)  # column -> [low, high]
    max_shrink: float | None = None  # refuse more than this fraction fewer rows than the previous partition

    def problems(self, path: str, previous_rows: int | None = None, previous_where: str = "") -> list[str]:
        """Every way the Parquet file at `path` falls short; empty when it may replace the partition."""
        rows = pq.read_metadata(path).num_rows
        found: list[str] = []
        if rows < self.min_rows:
            found.append(f"{rows} rows, at least {self.min_rows} required (an empty partition never replaces one)")
        if self.expected_rows is not None and rows != self.expected_rows:
            found.append(f"{rows} rows, expected {self.expected_rows}")
        if self.schema is not None:
            found += _schema_problems(pq.read_schema(path), self.schema)
        if (
            self.max_shrink is not None and self.max_shrink < 1 and previous_rows
            and rows < previous_rows * (1 - self.max_shrink)
        ):
            found.append(
                f"{rows} rows, {100 * (1 - rows / previous_rows):.0f}% fewer than the {previous_rows} of "
                f"{previous_where or 'the previous partition'} (more than {100 * self.max_shrink:.0f}% allowed by "
                f"{ENV_MAX_SHRINK}: a truncated export or a failed scope? set {ENV_MAX_SHRINK} higher if it is real)"
            )
        if self.keys or self.ranges:
            found += self._scan(path)
        return found

    def _scan(self, path: str) -> list[str]:
        """Keys and ranges in one pass over the file (a per-VM table of a million rows: ~0.25 s, where
        a scan per check cost three); the duplicate example is looked up only when there is one."""
        from qlrf import sql  # DuckDB only when a gate scans (the warehouse module stays light to import)

        con = sql.session()
        try:
            sql.relation(con, "part", path)
            measures, params, found = [], {}, []
            if self.keys:
                cols = ", ".join(sql.identifier(k) for k in self.keys)
                nulls = " OR ".join(f"{sql.identifier(k)} IS NULL" for k in self.keys)
                key = cols if len(self.keys) == 1 else f"({cols})"
                measures += [f"count(*) FILTER (WHERE NOT ({nulls})) - count(DISTINCT {key}) FILTER (WHERE NOT ({nulls}))",
                             f"count(*) FILTER (WHERE {nulls})"]
            for i, (column, (low, high)) in enumerate(self.ranges.items()):
                name = sql.identifier(column)
                measures.append(f"count(*) FILTER (WHERE {name} < $low{i} OR {name} > $high{i} OR isnan({name}::DOUBLE))")
                params.update({f"low{i}": low, f"high{i}": high})
            counts = list(sql.one(con, f"SELECT {', '.join(measures)} FROM part", params))
            if self.keys:
                surplus, null_rows = counts.pop(0), counts.pop(0)
                if surplus:
                    dupes, example = sql.one(con, f"""
                        SELECT count(*), any_value(concat_ws('|', {cols})) FROM (
                            SELECT {cols} FROM part WHERE NOT ({nulls}) GROUP BY ALL HAVING count(*) > 1)""")
                    found.append(f"{dupes} duplicated {'+'.join(self.keys)} value(s), e.g. {example!r}")
                if null_rows:
                    found.append(f"{null_rows} row(s) with a null {'+'.join(self.keys)}")
            for (column, (low, high)), outside in zip(self.ranges.items(), counts, strict=True):
                if outside:
                    found.append(f"{outside} row(s) with {column} outside [{low:g}, {high:g}]")
            return found
        finally:
            con.close()


def _schema_problems(actual: pa.Schema, expected: pa.Schema) -> list[str]:
    found = []
    missing = [f.name for f in expected if f.name not in actual.names]
    extra = [name for name in actual.names if name not in expected.names]
    if missing:
        found.append(f"missing column(s) {', '.join(missing)}")
    if extra:
        found.append(f"unexpected column(s) {', '.join(extra)}")
    for f in expected:
        if f.name in actual.names and not actual.field(f.name).type.equals(f.type):
            found.append(f"column {f.name} is {actual.field(f.name).type}, expected {f.type}")
    return found


class PartitionRejected(ValueError):
    """A new partition failed its gate: nothing was written, the previous one stays in force."""

    def __init__(self, table: str, where: str, problems: list[str]):
        self.table, self.where, self.problems = table, where, problems
        super().__init__(
            f"{table} {where} refused, the previous partition stays in force: " + "; ".join(problems)
        )
