"""Capacity planning: vCPU and memory per site x region x platform from inventory history, weekly
growth, a forecast, where a site will exceed its configured capacity, and VMs worth reclaiming.

Sizes come from the instance-type table (policy/instance_types.yaml; vSphere VMs carry their own
size); a type with no known size is counted under ``unknown_size_vms`` and named, never as zero.
Usage counts every non-terminated VM (a stopped VM keeps its allocation on vSphere and its quota in
the clouds). Growth is the least-squares slope of the daily totals over ``history_days``; the
forecast extends it ``horizon_days`` (no growth is fitted on fewer than 7 days). A reclaim candidate is stopped today and in every inventory
partition of the last ``reclaim_after_days`` days (a missing day counts as unchanged); with less
history than that nothing can be called stopped for long.

The DR failover needs per site (what a site's failover asks of its target) come from drsim's
simulation (qlrf/dr/simulation.py) when it lands: see :func:`failover_needs`, the hook.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from qlrf import sql
from qlrf.inventory.instance_types import VSPHERE_MEMORY_GIB_SQL, VSPHERE_VCPU_SQL, InstanceTypes
from qlrf.predict.policyfile import fail, load_policy
from qlrf.predict.tables import register_sizes
from qlrf.settings import project_root
from qlrf.warehouse import Warehouse

CAPACITY_PATH = project_root() / "policy" / "capacity.yaml"
MIN_GROWTH_DAYS = 7  # fewer daily partitions give a slope that is mostly noise: growth is reported as none


class Limit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(min_length=1)
    platform: str | None = None
    vcpu: PositiveFloat
    memory_gib: PositiveFloat


class CapacityPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    history_days: PositiveInt = 28
    horizon_days: PositiveInt = 90
    reclaim_after_days: PositiveInt = 30
    limits: list[Limit] = Field(default_factory=list)


def load_capacity(path: Path | str | None = None) -> CapacityPolicy:
    path = Path(path or CAPACITY_PATH)
    policy, lines = load_policy(CapacityPolicy, path, "capacity policy")
    seen = set()
    for i, limit in enumerate(policy.limits):
        key = (limit.site, limit.platform)
        if key in seen:
            raise fail(path, lines, ("limits", i), f"a second limit for site {limit.site} platform {limit.platform}")
        seen.add(key)
    return policy


def failover_needs(wh: Warehouse, day: date) -> list[dict] | None:
    """What losing each site needs at its DR target, from the failover simulation (qlrf.dr.simulation:
    one "lose site S" per site the DR target map names), so capacity and DR answer with the same
    figures. None when the day's vm_dr is not there yet (the recommendations then say so).

    The one place predict reads dr/: the simulation owns the target map and the per-VM sizes at the
    target; repeating that arithmetic here would let the two disagree."""
    from qlrf.dr.simulation import SimulationError, simulate
    from qlrf.dr.targets import configured_targets
    from qlrf.inventory.instance_types import default_instance_types

    targets, types = configured_targets(), default_instance_types()
    rows: list[dict] = []
    try:
        for site in sorted(targets.sites):
            sim = simulate(wh, targets.scenario("site", site), targets, types, day)
            rows.extend({"lost_site": site, **c} for c in sim.capacity if c["running_vms"])
    except (SimulationError, FileNotFoundError):
        return None
    return rows


def _failover_rows(failover: list[dict]) -> list[dict]:
    """One recommendation per (lost site, DR target): vCPU and memory the failover needs there."""
    out = []
    for f in failover:
        for resource in ("vcpu", "memory_gib"):
            needed, available = f[f"{resource}_needed"], f[f"{resource}_available"]
            out.append({"kind": "dr_failover", "site": f["lost_site"], "platform": "all", "resource": resource,
                        "used": round(float(needed), 1), "capacity": float(available), "growth_per_week": None,
                        "forecast": None, "exceeds_on": None,
                        "state": "fits at the target" if needed <= available else "does not fit at the target",
                        "note": f"failover of {f['lost_site']} to {f['target']} ({f['running_vms']} running VMs)"
                                + (f"; {f['note']}" if f.get("note") else "")})
    return out


def _files(wh: Warehouse, day: date, days: int) -> list[tuple[date, str, str | pa.Table]]:
    from qlrf.inventory.contract import PLATFORMS

    out = []
    for offset in range(days):
        d = day - timedelta(days=offset)
        for p in PLATFORMS:
            if wh.exists("inventory", d, p):
                out.append((d, p, wh.source("inventory", d, p)))
    return out


def prepare_history(con: duckdb.DuckDBPyConnection, wh: Warehouse, day: date, days: int, types: InstanceTypes) -> int:
    """A view `hist` of the inventory of the last `days` days with each VM's size; returns the days found."""
    found = _files(wh, day, days)
    if not found:
        raise FileNotFoundError(f"no inventory partitions in the {days} days up to {day}")
    cols = "asset_id, platform, region, site, environment, owner, state, instance_type"
    if all(isinstance(src, str) for _, _, src in found):
        con.read_parquet([src for _, _, src in found], hive_partitioning=True, union_by_name=True).create_view("raw_inv", replace=True)
        con.execute(f"CREATE OR REPLACE TEMP VIEW inv AS SELECT {cols}, date::DATE AS day FROM raw_inv")
    else:
        tables = [src.select(cols.split(", ")).append_column("day", pa.array([d] * src.num_rows, pa.date32()))
                  for d, _, src in found]
        sql.relation(con, "inv", pa.concat_tables(tables, promote_options="default"))
    register_sizes(con, types)
    vcpu = VSPHERE_VCPU_SQL.replace("instance_type", "i.instance_type")
    mem = VSPHERE_MEMORY_GIB_SQL.replace("instance_type", "i.instance_type")
    con.execute(f"""CREATE OR REPLACE TEMP VIEW hist AS
        SELECT i.*, coalesce(i.site, 'unassigned') AS site_, CASE WHEN i.platform = 'vsphere' THEN {vcpu} ELSE s.vcpu END AS vcpu,
               CASE WHEN i.platform = 'vsphere' THEN {mem} ELSE s.memory_gib END AS memory_gib
        FROM inv i LEFT JOIN sizes s ON s.platform = i.platform AND s.instance_type = i.instance_type
        WHERE i.state <> 'terminated'""")
    return len({d for d, _, _ in found})


PLAN_QUERY = """
WITH daily AS (
    SELECT day, site_ AS site, region, platform, count(*) AS vms, sum(vcpu) AS vcpu, sum(memory_gib) AS memory_gib,
           count(*) FILTER (WHERE vcpu IS NULL) AS unknown_size_vms,
           coalesce(string_agg(DISTINCT CASE WHEN vcpu IS NULL THEN coalesce(instance_type, '(none)') END, ','), '') AS unknown_types
    FROM hist GROUP BY ALL
), fit AS (
    SELECT site, region, platform, count(*) AS days,
           CASE WHEN count(*) >= $min_days THEN regr_slope(vcpu, epoch(day::TIMESTAMP) / 86400) END AS vcpu_slope,
           CASE WHEN count(*) >= $min_days THEN regr_slope(memory_gib, epoch(day::TIMESTAMP) / 86400) END AS mem_slope,
           arg_max(vms, day) AS vms, arg_max(vcpu, day) AS vcpu, arg_max(memory_gib, day) AS memory_gib,
           arg_max(unknown_size_vms, day) AS unknown_size_vms, arg_max(unknown_types, day) AS unknown_types,
           max(day) AS last_day
    FROM daily GROUP BY ALL
)
SELECT site, region, platform, days::INTEGER AS days_of_history, last_day, vms::INTEGER AS vms,
       coalesce(vcpu, 0)::DOUBLE AS vcpu, round(coalesce(memory_gib, 0), 1) AS memory_gib,
       unknown_size_vms::INTEGER AS unknown_size_vms, unknown_types,
       round(coalesce(vcpu_slope, 0) * 7, 2) AS vcpu_growth_per_week,
       round(coalesce(mem_slope, 0) * 7, 2) AS memory_gib_growth_per_week,
       round(greatest(0, coalesce(vcpu, 0) + coalesce(vcpu_slope, 0) * $horizon), 1) AS vcpu_forecast,
       round(greatest(0, coalesce(memory_gib, 0) + coalesce(mem_slope, 0) * $horizon), 1) AS memory_gib_forecast,
       $horizon::INTEGER AS horizon_days,
       CASE WHEN days >= $min_days THEN 'least squares over ' || days || ' days'
            ELSE 'no growth fitted (fewer than ' || $min_days || ' days of history)' END AS growth_method
FROM fit ORDER BY site, platform, region
"""

RECLAIM_QUERY = """
WITH per_vm AS (
    SELECT asset_id, platform, bool_and(state = 'stopped') AS always_stopped, min(day) AS first_seen,
           arg_max(state, day) AS state_today, max(day) AS last_day,
           arg_max(site_, day) AS site, arg_max(environment, day) AS environment, arg_max(owner, day) AS owner,
           arg_max(instance_type, day) AS instance_type, arg_max(vcpu, day) AS vcpu, arg_max(memory_gib, day) AS memory_gib
    FROM hist GROUP BY asset_id, platform
)
SELECT asset_id, platform, site, environment, owner, instance_type, vcpu, memory_gib, first_seen AS stopped_since_at_least,
       (date_diff('day', first_seen, $day::DATE))::INTEGER AS days_stopped
FROM per_vm
WHERE always_stopped AND last_day = $day::DATE AND first_seen <= $day::DATE - $after::INTEGER
ORDER BY platform, site, asset_id
"""


def capacity_plan(con: duckdb.DuckDBPyConnection, policy: CapacityPolicy) -> pa.Table:
    """Requires prepare_history(); one row per site x region x platform."""
    return sql.table(con, PLAN_QUERY, {"horizon": policy.horizon_days, "min_days": MIN_GROWTH_DAYS})


def reclaim_candidates(con: duckdb.DuckDBPyConnection, day: date, policy: CapacityPolicy) -> pa.Table:
    """Requires prepare_history() over at least `reclaim_after_days` + 1 days."""
    return sql.table(con, RECLAIM_QUERY, {"day": day, "after": policy.reclaim_after_days})


def recommendations(plan: pa.Table, policy: CapacityPolicy, day: date, failover: list[dict] | None = None) -> list[dict]:
    """One row per configured limit: usage, forecast, capacity and when it is (or will be) exceeded."""
    rows = plan.to_pylist()
    out = []
    for limit in policy.limits:
        scope = [r for r in rows if r["site"] == limit.site and (limit.platform is None or r["platform"] == limit.platform)]
        for resource, cap in (("vcpu", limit.vcpu), ("memory_gib", limit.memory_gib)):
            used = sum(r[resource] for r in scope)
            per_week = sum(r[f"{resource}_growth_per_week"] for r in scope)
            forecast = max(0.0, used + per_week / 7 * policy.horizon_days)
            if used > cap:
                when, state = day, "over capacity now"
            elif per_week > 0 and forecast > cap:
                when = day + timedelta(days=int((cap - used) / (per_week / 7)) + 1)
                state = f"will exceed within {policy.horizon_days} days"
            else:
                when, state = None, "within capacity"
            unknown = sum(r["unknown_size_vms"] for r in scope)
            out.append({"kind": "site_capacity", "site": limit.site, "platform": limit.platform or "all",
                        "resource": resource, "used": round(used, 1), "capacity": cap,
                        "growth_per_week": round(per_week, 2), "forecast": round(forecast, 1),
                        "exceeds_on": when, "state": state,
                        "note": f"{unknown} VM(s) of unknown size not counted" if unknown else ""})
    if failover is None:
        out.append({"kind": "dr_failover", "site": "all", "platform": "all", "resource": "vcpu,memory_gib", "used": None,
                    "capacity": None, "growth_per_week": None, "forecast": None, "exceeds_on": None,
                    "state": "unknown", "note": "no DR readiness (vm_dr) for the day yet: the failover simulation "
                                                "(qlrf dr simulate) has nothing to read"})
    else:
        out.extend(_failover_rows(failover))
    return out
