"""estimate_cost: what a scope of VMs costs an hour and a month at the shipped list prices.

The prices are data (policy/prices.yaml), labelled as list prices for estimates. A VM whose instance
type the table does not know is priced at its platform's `default` and named under
`unknown_instance_types`, so the model can say how much of the total is a guess rather than hide it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat

from qlrf.ai.tools.context import ToolContext, ToolInputError, select_day
from qlrf.ai.tools.fleet import Scope
from qlrf.settings import project_root

PRICES_PATH = project_root() / "policy" / "prices.yaml"


class _PlatformPrices(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: PositiveFloat
    types: dict[str, PositiveFloat] = {}


class _PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    hours_per_month: PositiveFloat
    platforms: dict[str, _PlatformPrices]


@dataclass(frozen=True)
class PriceTable:
    """Hourly USD list prices per platform x instance type, with a default per platform."""

    hours_per_month: float
    _platforms: dict[str, _PlatformPrices]

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(self._platforms)

    def default(self, platform: str) -> float:
        return self._platforms[platform].default

    def hourly(self, platform: str, instance_type: str | None) -> float | None:
        """The list price, or None when the table does not know the type (never a silent default)."""
        return self._platforms[platform].types.get(instance_type) if instance_type else None


@lru_cache(maxsize=4)
def load_prices(path: Path | None = None) -> PriceTable:
    raw = _PriceFile.model_validate(yaml.safe_load(Path(path or PRICES_PATH).read_text()))
    return PriceTable(raw.hours_per_month, raw.platforms)


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


def estimate_cost(ctx: ToolContext, q: CostQuery) -> dict:
    prices = load_prices()
    if q.platform is not None and q.platform not in prices.platforms:
        raise ToolInputError(f"unknown platform {q.platform!r}; platforms: {', '.join(prices.platforms)}")
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
