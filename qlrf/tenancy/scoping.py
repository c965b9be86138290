"""Warehouse scoping (issue 14 item 5): the one way a reader keeps only its caller's organisations.

Why one place: the dashboard views, the report, the AI tools and the SBOM query each read the
warehouse their own way, but what a restricted caller may see must be decided identically, or the
loosest reader decides. ``orgs=None`` means unrestricted (system use: the pipeline, a trusted local
operator); any collection, even an empty one, restricts to exactly those organisations.

Three kinds of table:
- shared catalogue tables (golden images, their packages) describe no one's VMs: seen whole;
- per-VM tables carry ``org`` (or ``platform`` + ``account`` to resolve it for rows written before
  contract 1.1): filtered;
- roll-ups (scores per platform x site x environment) mix tenants: for a restricted reader they are
  recomputed from the filtered per-VM rows with the stage's own query, so the numbers match the stage
  for those VMs; a roll-up with no such recipe is refused (:class:`OutOfScope`), never shown whole.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from qlrf.tenancy import model as tenancy

if TYPE_CHECKING:
    import duckdb

SHARED_TABLES = frozenset({"golden_images", "image_packages", "cloud_images"})


class OutOfScope(LookupError):
    """A fleet-wide table a restricted reader may not see; the message names it and the caller's orgs."""


def roll_ups() -> dict[str, tuple[str, str]]:
    """Roll-up table -> (per-VM table, the stage's roll-up query over a relation named like it)."""
    from qlrf.predict import risk
    from qlrf.scoring import compliance, dr, drift

    return {
        "drift_scores": ("vm_drift", drift.SCORES_QUERY),
        "compliance_scores": ("vm_compliance", compliance.SCORES_QUERY),
        "dr_scores": ("vm_dr", dr.SCORES_QUERY),
        "risk_scores": ("vm_risk", risk.SCORES_QUERY),
    }


def source(table: str, orgs: Collection[str] | None) -> tuple[str, str | None]:
    """(table to read, roll-up query over it or None): a restricted reader of a roll-up reads its per-VM table."""
    if orgs is None or table in SHARED_TABLES:
        return table, None
    return roll_ups().get(table, (table, None))


def restrict(con: duckdb.DuckDBPyConnection, files: str, view: str, table: str, orgs: Collection[str],
             derive: str | None = None, mapping: tenancy.Tenancy | None = None) -> None:
    """Expose as `view` only the rows of `orgs` from the registered relation `files` (rows of `table`).

    With `derive` (from :func:`source`), `view` is that roll-up query over the filtered rows."""
    import pyarrow as pa

    from qlrf import sql

    if table in SHARED_TABLES:
        con.register(view, con.table(files))
        return
    columns = set(con.table(files).columns)
    if "org" not in columns and not {"platform", "account"} <= columns:
        who = ", ".join(sorted(orgs)) or "no organisation"
        raise OutOfScope(f"{table} has no organisation to filter on (a fleet-wide roll-up, or a partition written "
                         f"before tenancy; re-run that day): it is not shown to a reader restricted to {who}")
    tenancy.relation(con, f"{view}__scoped", con.table(files), mapping)
    sql.relation(con, f"{view}__orgs", pa.table({"org": pa.array(sorted(set(orgs)), pa.string())}))
    kept = con.sql(f"SELECT * FROM {sql.identifier(view)}__scoped WHERE org IN (SELECT org FROM {view}__orgs)")
    if derive is None:
        con.register(view, kept)
    else:
        con.register(sql.identifier(table), kept)
        con.register(view, con.sql(derive))


__all__ = ["SHARED_TABLES", "OutOfScope", "restrict", "roll_ups", "source"]
