"""estimate_cost: what a scope of VMs costs an hour and a month at the shipped list prices.

When the day's vm_cost asset exists (qlrf/predict/cost.py) the tool reads it: a type without a price
has cost unknown, named under `unknown_instance_types`, and is left out of the totals (never zero).
Without it the tool prices the inventory itself from the same table (policy/prices.yaml, loaded by
qlrf.predict.cost): an unknown type is then priced at its platform's `default` and named, so the
model can say how much of the total is a guess rather than hide it.
"""

from __future__ import annotations

from pydantic import Field

from qlrf.ai.tools.context import ToolContext, ToolInputError, day_of, select_day
from qlrf.ai.tools.fleet import Scope
from qlrf.predict.cost import PRICES_PATH, PriceTable, load_prices

__all__ = ["PRICES_PATH", "CostQuery", "PriceTable", "estimate_cost", "load_prices"]


class CostQuery(Scope):
    state: str | None = Field("running", description="VM state to cost (stopped VMs bill no compute); null: all "
                                                     "but terminated")


_QUERY = """
SELECT platform, instance_type, count(*)::INTEGER AS vms FROM t
WHERE ($platform::VARCHAR IS NULL OR platform = $platform) AND ($site::VARCHAR IS NULL OR site = $site)
  AND ($environment::VARCHAR IS NULL OR environment = $environment)
  AND (($state::VARCHAR IS NULL AND state <> 'terminated') OR state = $state)
GROUP BY ALL ORDER BY vms DESC, platform, instance_type
"""


def _line(prices: PriceTable, platform: str, instance_type: str | None, vms: int) -> dict:
    listed = prices.hourly(platform, instance_type)
    each = listed if listed is not None else prices.default(platform)
    return {"platform": platform, "instance_type": instance_type, "vms": vms, "hourly_usd_each": each,
            "priced_at": "list" if listed is not None else "platform default", "hourly_usd": round(each * vms, 4),
            "monthly_usd": round(each * vms * prices.hours_per_month, 2)}


_FROM_ASSET = """
SELECT platform, instance_type, count(*)::INTEGER AS vms, sum(monthly_usd) AS monthly_usd,
       count(*) FILTER (WHERE monthly_usd IS NULL)::INTEGER AS unknown_vms, any_value(cost_basis) AS cost_basis,
       sum(rightsize_monthly_saving) AS rightsizing_saving, any_value(rightsize_to) AS rightsize_to FROM t
WHERE ($platform::VARCHAR IS NULL OR platform = $platform) AND ($site::VARCHAR IS NULL OR site = $site)
  AND ($environment::VARCHAR IS NULL OR environment = $environment)
  AND (($state::VARCHAR IS NULL AND state <> 'terminated') OR state = $state)
GROUP BY ALL ORDER BY vms DESC, platform, instance_type
"""


def _from_asset(ctx: ToolContext, q: CostQuery, prices: PriceTable) -> dict:
    """The vm_cost asset's estimate: unknown costs stay unknown (named), never zero or a default."""
    groups, facts = select_day(ctx, "vm_cost", q.day, _FROM_ASSET, q.model_dump(exclude={"day"}))
    rows = [{"platform": g["platform"], "instance_type": g["instance_type"], "vms": g["vms"],
             "monthly_usd": None if g["unknown_vms"] else round(g["monthly_usd"] or 0.0, 2), "cost_basis": g["cost_basis"],
             "rightsize_to": g["rightsize_to"], "rightsizing_monthly_saving": round(g["rightsizing_saving"] or 0.0, 2)}
            for g in groups]
    unknown = [{"platform": g["platform"], "instance_type": g["instance_type"], "vms": g["unknown_vms"], "cost": "unknown"}
               for g in groups if g["unknown_vms"]]
    monthly = sum(g["monthly_usd"] or 0.0 for g in groups)
    return {"rows": rows, "vms": sum(g["vms"] for g in groups), "monthly_usd": round(monthly, 2),
            "hourly_usd": round(monthly / prices.hours_per_month, 4), "monthly_usd_covers": "VMs with a known cost only",
            "unknown_instance_types": unknown,
            "rightsizing_monthly_saving": round(sum(r["rightsizing_monthly_saving"] for r in rows), 2),
            "facts": {**facts, "state": q.state or "all but terminated", "hours_per_month": prices.hours_per_month,
                      "prices": prices.label()}}


def estimate_cost(ctx: ToolContext, q: CostQuery) -> dict:
    prices = load_prices()
    if q.platform is not None and q.platform not in prices.platforms:
        raise ToolInputError(f"unknown platform {q.platform!r}; platforms: {', '.join(prices.platforms)}")
    day = day_of(ctx, "inventory", q.day)
    if any(ctx.warehouse.exists("vm_cost", day, p) for p in ctx.platforms):
        return _from_asset(ctx, q, prices)
    groups, facts = select_day(ctx, "inventory", q.day, _QUERY, q.model_dump(exclude={"day"}))
    lines = [_line(prices, g["platform"], g["instance_type"], g["vms"]) for g in groups]
    unknown = [{"platform": ln["platform"], "instance_type": ln["instance_type"], "vms": ln["vms"],
                "hourly_usd_each_at_default": ln["hourly_usd_each"]} for ln in lines if ln["priced_at"] != "list"]
    hourly = sum(ln["hourly_usd"] for ln in lines)
    known = sum(ln["hourly_usd"] for ln in lines if ln["priced_at"] == "list")
    return {"rows": lines, "vms": sum(ln["vms"] for ln in lines), "hourly_usd": round(hourly, 4),
            "monthly_usd": round(hourly * prices.hours_per_month, 2), "hourly_usd_known": round(known, 4),
            "unknown_instance_types": unknown,
            "facts": {**facts, "state": q.state or "all but terminated", "hours_per_month": prices.hours_per_month,
                      "prices": "list prices for estimates (policy/prices.yaml): on-demand, no discounts, "
                                "storage or egress"}}
