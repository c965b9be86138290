"""Fleet tools over the scored warehouse: assets, drift, compliance and DR readiness for a day.

Each answers either the roll-up (per platform x site x environment) or, given an asset_id, that
VM's own row, and returns the facts (table, day, partitions) the rows came from so an answer can cite them.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from qlrf import sql
from qlrf.ai.tools.context import ToolContext, day_view, select_day

_MODEL = ConfigDict(extra="forbid", strict=True)
_SCOPE = ("platform", "site", "environment")


def _where(columns: tuple[str, ...]) -> str:
    """`($c IS NULL OR c = $c)` per column: column names are code; a missing filter matches all."""
    return " AND ".join(f"(${c}::VARCHAR IS NULL OR {c} = ${c})" for c in columns) or "true"


class Scope(BaseModel):
    model_config = _MODEL
    day: date | None = Field(None, description="partition day (YYYY-MM-DD); default: the newest materialised")
    platform: str | None = Field(None, description="aws, azure, gcp or vsphere")
    site: str | None = None
    environment: str | None = Field(None, description="dev, staging or prod")


class ScopeOrVm(Scope):
    asset_id: str | None = Field(None, description="one VM: return its own row instead of the roll-up")


class AssetQuery(Scope):
    state: str | None = Field(None, description="running, stopped, ...")
    image_family: str | None = Field(None, description="golden image family, e.g. ubuntu-22")
    status: Literal["current", "behind", "revoked", "unmanaged", "unknown"] | None = Field(
        None, description="drift status: current, behind (older golden version), revoked, unmanaged, unknown")
    limit: int = Field(50, ge=1, le=500)


_ASSET_COLUMNS = ("asset_id, platform, account, region, site, environment, owner, state, image_ref, family, "
                  "image_version, status, severity")


def query_assets(ctx: ToolContext, q: AssetQuery) -> dict:
    where = _where((*_SCOPE, "state", "status")) + " AND ($family::VARCHAR IS NULL OR family = $family)"
    params = {"platform": q.platform, "site": q.site, "environment": q.environment, "state": q.state,
              "status": q.status, "family": q.image_family, "limit": q.limit}
    # The count apart from the rows: a window count would materialise every match of a million-VM day.
    with sql.session() as con:
        facts = day_view(con, ctx, "vm_drift", q.day)
        rows = sql.table(con, f"SELECT {_ASSET_COLUMNS} FROM t WHERE {where} ORDER BY asset_id LIMIT $limit",
                         params).to_pylist()
        matching = sql.one(con, f"SELECT count(*) FROM t WHERE {where}",
                           {k: v for k, v in params.items() if k != "limit"})[0]
    return {"rows": rows, "matching": matching, "facts": facts}


def _scores_or_vm(ctx: ToolContext, q: ScopeOrVm, scores: str, per_vm: str) -> dict:
    params = {"platform": q.platform, "site": q.site, "environment": q.environment}
    if q.asset_id is not None:
        rows, facts = select_day(ctx, per_vm, q.day, f"SELECT * FROM t WHERE asset_id = $asset_id AND {_where(_SCOPE)}",
                                 {**params, "asset_id": q.asset_id})
        if not rows:
            raise LookupError(f"{q.asset_id}: no {per_vm} row on {facts['day']} (not inventoried that day?)")
        return {"rows": rows, "facts": facts}
    rows, facts = select_day(ctx, scores, q.day,
                             f"SELECT * FROM t WHERE {_where(_SCOPE)} ORDER BY platform, site, environment", params)
    return {"rows": rows, "facts": facts}


def get_drift_status(ctx: ToolContext, q: ScopeOrVm) -> dict:
    return _scores_or_vm(ctx, q, "drift_scores", "vm_drift")


def check_compliance(ctx: ToolContext, q: ScopeOrVm) -> dict:
    return _scores_or_vm(ctx, q, "compliance_scores", "vm_compliance")


def get_dr_status(ctx: ToolContext, q: ScopeOrVm) -> dict:
    return _scores_or_vm(ctx, q, "dr_scores", "vm_dr")
