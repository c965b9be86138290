"""Estimated monthly cost per VM, site, environment, platform and owner: an ESTIMATE from list prices.

Prices are data (policy/prices.yaml: source and date in the file): on-demand Linux hourly list prices
per platform x instance type, x ``hours_per_month``; a vSphere VM is priced from its own size at the
configured per-vCPU and per-GiB rate. No discounts, reservations, licences, storage or egress.

A running VM whose type has no price has cost *unknown*, with the type named, never zero; a stopped
VM bills no compute (its disks are the notional ``stopped_monthly_usd``, which is also what reclaiming
it saves). Right-sizing hints come from the instance families: the cheapest listed type of the same
platform with at least the VM's vCPU and memory, when it costs less (a hint: check CPU architecture,
burstable credits and licences before moving).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, PositiveFloat

from qlrf import sql
from qlrf.inventory.instance_types import VSPHERE_MEMORY_GIB_SQL, VSPHERE_VCPU_SQL, InstanceTypes
from qlrf.predict.policyfile import fail, load_policy
from qlrf.predict.tables import register_sizes
from qlrf.settings import project_root
from qlrf.tenancy import model as tenancy

PRICES_PATH = project_root() / "policy" / "prices.yaml"
ESTIMATE_LABEL = "ESTIMATE from list prices (policy/prices.yaml): on-demand, no discounts, storage or egress"


class _PlatformPrices(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: PositiveFloat
    types: dict[str, PositiveFloat] = {}


class _VsphereRate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_vcpu_hour: PositiveFloat
    per_gib_hour: PositiveFloat


class _PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    source: str = "unspecified"
    as_of: dt.date | None = None
    hours_per_month: PositiveFloat
    vsphere_rate: _VsphereRate | None = None
    stopped_monthly_usd: dict[str, float] = {}
    platforms: dict[str, _PlatformPrices]


@dataclass(frozen=True)
class PriceTable:
    """Hourly USD list prices per platform x instance type, with a default per platform (for the AI
    tool's labelled fallback only), the vSphere rate and what a stopped VM still costs."""

    hours_per_month: float
    _platforms: dict[str, _PlatformPrices]
    source: str = "unspecified"
    as_of: dt.date | None = None
    vsphere_rate: _VsphereRate | None = None
    stopped_monthly: dict[str, float] | None = None

    @property
    def platforms(self) -> tuple[str, ...]:
        return tuple(self._platforms)

    def default(self, platform: str) -> float:
        return self._platforms[platform].default

    def hourly(self, platform: str, instance_type: str | None) -> float | None:
        """The list price, or None when the table does not know the type (never a silent default)."""
        return self._platforms[platform].types.get(instance_type) if instance_type else None

    def label(self) -> str:
        return f"{ESTIMATE_LABEL}; source: {self.source}, as of {self.as_of or 'unknown'}"

    def listed(self) -> list[tuple[str, str, float]]:
        return [(p, t, price) for p, pp in self._platforms.items() for t, price in sorted(pp.types.items())]


def load_price_table(path: Path | str | None = None) -> PriceTable:
    """policy/prices.yaml, validated: PolicyFileError naming the file and line."""
    path = Path(path or PRICES_PATH)
    raw, lines = load_policy(_PriceFile, path, "price table")
    for platform, usd in raw.stopped_monthly_usd.items():
        if usd < 0:
            raise fail(path, lines, ("stopped_monthly_usd", platform), "must be >= 0")
    return PriceTable(raw.hours_per_month, raw.platforms, raw.source, raw.as_of, raw.vsphere_rate, raw.stopped_monthly_usd)


@lru_cache(maxsize=4)
def load_prices(path: Path | None = None) -> PriceTable:
    """The shipped price table, cached (what the estimate_cost tool uses)."""
    return load_price_table(path)


def rightsizing_hints(prices: PriceTable, types: InstanceTypes) -> list[dict]:
    """(platform, from type) -> the cheapest listed type with at least its vCPU and memory, when cheaper."""
    priced = [(p, t, h, types.size_of(p, t)) for p, t, h in prices.listed()]
    priced = [(p, t, h, s) for p, t, h, s in priced if s is not None]
    hints = []
    for p, t, h, s in priced:
        cheaper = [(h2, t2) for p2, t2, h2, s2 in priced
                   if p2 == p and t2 != t and h2 < h and s2.vcpu >= s.vcpu and s2.memory_gib >= s.memory_gib]
        if cheaper:
            h2, t2 = min(cheaper)
            hints.append({"platform": p, "instance_type": t, "rightsize_to": t2,
                          "monthly_saving": round((h - h2) * prices.hours_per_month, 2)})
    return hints


def prepare(con: duckdb.DuckDBPyConnection, inventory, prices: PriceTable, types: InstanceTypes) -> None:
    """Register the inventory, the price list, the size table and the right-sizing hints (small tables
    built in DuckDB from list parameters)."""
    tenancy.relation(con, "inventory", inventory)  # org/project filled for 1.0 partitions
    listed = prices.listed()
    con.execute("CREATE OR REPLACE TEMP TABLE prices AS SELECT unnest($p::VARCHAR[]) AS platform, "
                "unnest($t::VARCHAR[]) AS instance_type, unnest($h::DOUBLE[]) AS hourly",
                {"p": [x[0] for x in listed], "t": [x[1] for x in listed], "h": [x[2] for x in listed]})
    register_sizes(con, types)
    hints = rightsizing_hints(prices, types)
    con.execute("CREATE OR REPLACE TEMP TABLE hints AS SELECT unnest($p::VARCHAR[]) AS platform, "
                "unnest($t::VARCHAR[]) AS instance_type, unnest($to::VARCHAR[]) AS rightsize_to, "
                "unnest($s::DOUBLE[]) AS monthly_saving",
                {"p": [h["platform"] for h in hints], "t": [h["instance_type"] for h in hints],
                 "to": [h["rightsize_to"] for h in hints], "s": [h["monthly_saving"] for h in hints]})
    rate = prices.vsphere_rate
    stopped = prices.stopped_monthly or {}
    con.execute("CREATE OR REPLACE TEMP TABLE cost_params AS SELECT $hours::DOUBLE AS hours, $vcpu::DOUBLE AS vcpu_rate, "
                "$gib::DOUBLE AS gib_rate",
                {"hours": prices.hours_per_month, "vcpu": rate.per_vcpu_hour if rate else None,
                 "gib": rate.per_gib_hour if rate else None})
    con.execute("CREATE OR REPLACE TEMP TABLE stopped_cost AS SELECT unnest($p::VARCHAR[]) AS platform, "
                "unnest($u::DOUBLE[]) AS monthly", {"p": list(stopped), "u": list(stopped.values())})


VM_QUERY = f"""
WITH v AS (
    SELECT i.asset_id, i.platform, i.account, i.region, coalesce(i.site, 'unassigned') AS site,
           coalesce(i.environment, 'unknown') AS environment, coalesce(i.owner, 'unowned') AS owner, i.state,
           i.instance_type, i.org, i.project,
           CASE WHEN i.platform = 'vsphere' THEN {VSPHERE_VCPU_SQL.replace('instance_type', 'i.instance_type')} ELSE s.vcpu END AS vcpu,
           CASE WHEN i.platform = 'vsphere' THEN {VSPHERE_MEMORY_GIB_SQL.replace('instance_type', 'i.instance_type')} ELSE s.memory_gib END AS memory_gib,
           p.hourly AS list_hourly, h.rightsize_to, h.monthly_saving AS hint_saving, sc.monthly AS stopped_monthly
    FROM inventory i
    LEFT JOIN prices p ON p.platform = i.platform AND p.instance_type = i.instance_type
    LEFT JOIN sizes s ON s.platform = i.platform AND s.instance_type = i.instance_type
    LEFT JOIN hints h ON h.platform = i.platform AND h.instance_type = i.instance_type
    LEFT JOIN stopped_cost sc ON sc.platform = i.platform
    WHERE i.state <> 'terminated'
), priced AS (
    SELECT v.*, CASE WHEN platform = 'vsphere' THEN vcpu * c.vcpu_rate + memory_gib * c.gib_rate ELSE list_hourly END AS hourly,
           c.hours
    FROM v CROSS JOIN cost_params c
)
SELECT asset_id, platform, account, region, site, environment, owner, state, instance_type, vcpu, memory_gib,
       CASE WHEN state = 'running' THEN round(hourly * hours, 2)
            WHEN state = 'stopped' THEN stopped_monthly END AS monthly_usd,
       CASE WHEN state = 'running' AND hourly IS NULL
                 THEN 'unknown: no price for ' || platform || ' type ' || coalesce(instance_type, '(none)')
            WHEN state = 'running' THEN 'estimate: ' || CASE WHEN platform = 'vsphere' THEN 'vSphere rate x size' ELSE 'list price' END
            WHEN state = 'stopped' THEN 'estimate: stopped, disks only'
            ELSE 'unknown: state ' || state END AS cost_basis,
       CASE WHEN state = 'running' AND hourly IS NULL THEN instance_type END AS unknown_type,
       CASE WHEN state = 'running' THEN rightsize_to END AS rightsize_to,
       CASE WHEN state = 'running' THEN hint_saving END AS rightsize_monthly_saving,
       org, project
FROM priced
"""

# Roll-ups of one or more platforms' vm_cost: per dimension value. Unknown costs are counted, never summed as 0.
SUMMARY_QUERY = """
WITH d AS (
    SELECT 'platform' AS dimension, platform AS key, * FROM vm_cost
    UNION ALL SELECT 'site', site, * FROM vm_cost
    UNION ALL SELECT 'environment', environment, * FROM vm_cost
    UNION ALL SELECT 'owner', owner, * FROM vm_cost
    UNION ALL SELECT 'all', 'all', * FROM vm_cost
)
SELECT dimension, key, count(*)::INTEGER AS vms,
       count(*) FILTER (WHERE state = 'running')::INTEGER AS running_vms,
       count(*) FILTER (WHERE monthly_usd IS NULL)::INTEGER AS unknown_cost_vms,
       coalesce(string_agg(DISTINCT unknown_type, ',' ORDER BY unknown_type), '') AS unknown_types,
       round(coalesce(sum(monthly_usd), 0), 2) AS monthly_usd_estimate_known,
       round(coalesce(sum(rightsize_monthly_saving), 0), 2) AS rightsizing_monthly_saving
FROM d GROUP BY ALL ORDER BY dimension, monthly_usd_estimate_known DESC, key
"""


def vm_cost(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """Requires prepare(); one row per non-terminated VM."""
    return sql.table(con, VM_QUERY)


def cost_summary(vm_cost_table: pa.Table | str) -> pa.Table:
    con = sql.connect()
    sql.relation(con, "vm_cost", vm_cost_table)
    return sql.table(con, SUMMARY_QUERY)


def reclaim_savings(candidates: pa.Table, prices: PriceTable) -> float:
    """Monthly USD saved by reclaiming the candidates (their notional disks), unknown platforms excluded."""
    stopped = prices.stopped_monthly or {}
    return round(sum(stopped.get(p, 0.0) for p in candidates["platform"].to_pylist()), 2) if candidates.num_rows else 0.0
