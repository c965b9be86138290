"""Failover simulation: what if a site, a region or a platform were lost today?

Reads the warehouse only (never a cloud): the day's ``vm_dr`` partitions (every platform present),
the drill journal ``dr_drills`` and the instance-type sizes, and the DR target map
(qlrf.dr.targets). One DuckDB pass per question, so a million-VM day answers in about a second.

For every affected VM (not terminated, in the lost scope):

* **where it recovers**: the target its region or site maps to (``unmapped`` when neither does);
* **capacity**: running VMs' vCPU and memory from their instance type, summed per target against the
  target's configured capacity (a target lost in the same scenario offers none; a VM of unknown size
  is counted by type name, never as zero);
* **RTO**: the median RTO of *passed* drills of the same platform and size class in the 180 days up
  to the end of the day (size class from vCPU: small <= 2, medium <= 4, large <= 8, xlarge); with no
  such drill it is ``unmeasured``, never a guess;
* **RPO exposure**: the age of its newest restore point at the end of the day (the data a failover
  now would lose), against its environment's RPO objective.

A group (the inventory group, else the ``app`` tag per environment, else ``ungrouped/<env>``) *meets*
its objectives only when every VM has a target with room, a measured RTO within the objective, a
restore point within the RPO and an image it can be rebuilt from; anything else is *breached*, with
each reason counted. Unproven is not met: an unmeasured RTO is a breach reason of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import duckdb
import pyarrow as pa

from qlrf import sql
from qlrf.dr.evidence import register_drills
from qlrf.dr.targets import DrTargets, Scenario
from qlrf.inventory.instance_types import VSPHERE_MEMORY_GIB_SQL, VSPHERE_VCPU_SQL, InstanceTypes
from qlrf.platforms import PLATFORMS
from qlrf.warehouse import PartitionMissing, Warehouse

DRILL_WINDOW_DAYS = 180
UNMAPPED = "unmapped"
NEEDED_COLUMNS = ("asset_id", "platform", "region", "site", "environment", "state", "snapshot_age_hours", "rpo_hours",
                  "rebuildable", "instance_type", "dr_group")
SIZE_CLASS_SQL = """CASE WHEN {v} IS NULL THEN 'unknown' WHEN {v} <= 2 THEN 'small' WHEN {v} <= 4 THEN 'medium'
                         WHEN {v} <= 8 THEN 'large' ELSE 'xlarge' END"""
REASONS = {
    "no_target": "no DR target mapped",
    "capacity_short": "target short of capacity",
    "target_lost": "target lost in the same scenario",
    "rto_unmeasured": "RTO unmeasured (no passed drill of its platform and size class)",
    "rto_exceeded": "estimated RTO above objective",
    "no_restore_point": "no restore point",
    "rpo_exceeded": "restore point older than RPO",
    "not_rebuildable": "cannot rebuild from a golden image",
}


class SimulationError(ValueError):
    """The simulation cannot run on this warehouse; the message names the partition and how to produce it."""


def end_of_day(day: date) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


@dataclass
class Simulation:
    scenario: Scenario
    day: str
    as_of: datetime
    affected_vms: int
    affected_running_vms: int
    groups: list[dict]
    capacity: list[dict]
    rto: list[dict]
    rpo: dict
    sources: dict = field(default_factory=dict)

    @property
    def breached(self) -> list[dict]:
        return [g for g in self.groups if g["verdict"] == "breached"]

    def as_dict(self) -> dict[str, Any]:
        s = self.scenario
        return {
            "scenario": {"name": s.name, "kind": s.kind, "value": s.value, "environment": s.environment},
            "day": self.day, "as_of": self.as_of.isoformat(),
            "affected_vms": self.affected_vms, "affected_running_vms": self.affected_running_vms,
            "affected_groups": len(self.groups),
            "groups_met": len(self.groups) - len(self.breached), "groups_breached": len(self.breached),
            "capacity": self.capacity, "rto": self.rto, "rpo": self.rpo, "verdict": self.groups,
            "sources": self.sources,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), default=str, sort_keys=False)


def newest_day(wh: Warehouse) -> str:
    days = wh.dates("vm_dr")
    if not days:
        raise SimulationError("no vm_dr partition in the warehouse: run `qlrf run` (or `make run`) first")
    return days[-1]


def temp_table(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, tuple[str, list]]) -> None:
    """A small temporary table from Python lists passed as parameters: no Arrow registration, whose
    first use imports pyarrow.dataset and pandas (seconds in a fresh process)."""
    cols = ", ".join(f"unnest(${c}::{t}[]) AS {c}" for c, (t, _) in columns.items())
    con.execute(f"CREATE OR REPLACE TEMP TABLE {sql.identifier(name)} AS SELECT {cols}", {c: v for c, (_, v) in columns.items()})


def _register_inputs(con: duckdb.DuckDBPyConnection, wh: Warehouse, day: str, targets: DrTargets,
                     types: InstanceTypes, as_of: datetime) -> dict:
    present = [p for p in PLATFORMS if wh.exists("vm_dr", day, p)]
    if not present:
        raise SimulationError(f"no vm_dr partition for {day}: run `qlrf run --date {day}` first")
    if wh.local:
        # registered (connection-local), never create_view: that names a view in the shared database
        sql.relation(con, "vm_dr_all", [wh.file("vm_dr", day, p) for p in present])
    else:
        sql.relation(con, "vm_dr_all", wh.read_platforms("vm_dr", day, present))
    have = {r[0] for r in con.execute("DESCRIBE vm_dr_all").fetchall()}
    missing = [c for c in NEEDED_COLUMNS if c not in have]
    if missing:
        raise SimulationError(f"vm_dr for {day} predates failover simulation (no {', '.join(missing)}): "
                              f"re-run the day with `qlrf run --date {day}`")
    drill_rows = register_drills(con, wh, date.fromisoformat(day), DRILL_WINDOW_DAYS)
    sizes = sorted(types.sizes.items())
    temp_table(con, "types", {"platform": ("VARCHAR", [p for (p, _), _s in sizes]),
                              "instance_type": ("VARCHAR", [t for (_, t), _s in sizes]),
                              "vcpu": ("INTEGER", [z.vcpu for _, z in sizes]),
                              "memory_gib": ("DOUBLE", [z.memory_gib for _, z in sizes])})
    temp_table(con, "as_of", {"as_of": ("TIMESTAMPTZ", [as_of])})
    tnames = sorted(targets.targets)
    temp_table(con, "targets", {"target": ("VARCHAR", tnames),
                                "vcpu": ("BIGINT", [targets.targets[t].vcpu for t in tnames]),
                                "memory_gib": ("DOUBLE", [targets.targets[t].memory_gib for t in tnames]),
                                "target_site": ("VARCHAR", [targets.targets[t].site for t in tnames])})
    temp_table(con, "site_map", {"site": ("VARCHAR", list(targets.sites)), "target": ("VARCHAR", list(targets.sites.values()))})
    temp_table(con, "region_map", {"region": ("VARCHAR", list(targets.regions)),
                                   "target": ("VARCHAR", list(targets.regions.values()))})
    temp_table(con, "rto_objectives", {"environment": ("VARCHAR", list(targets.rto_minutes)),
                                       "rto_objective_seconds": ("DOUBLE", [60.0 * m for m in targets.rto_minutes.values()])})
    return {"vm_dr": [f"{day}|{p}" for p in present], "dr_drills_rows_in_window": drill_rows,
            "targets": targets.path}


_SIZE = f"""
    coalesce(ty.vcpu, CASE WHEN {{a}}.platform = 'vsphere' THEN {VSPHERE_VCPU_SQL.replace('instance_type', '{a}.instance_type')} END)
"""


def _vcpu(alias: str) -> str:
    return _SIZE.format(a=alias).strip()


def _memory(alias: str) -> str:
    return (f"coalesce(ty.memory_gib, CASE WHEN {alias}.platform = 'vsphere' THEN "
            f"{VSPHERE_MEMORY_GIB_SQL.replace('instance_type', f'{alias}.instance_type')} END)")


def _affected_sql(scenario: Scenario, per_vm: bool = False) -> str:
    """The affected VMs as a temporary table `affected`; only the columns the roll-ups read unless
    `per_vm` (the listing): strings cost most when a million rows are materialised."""
    first, second = ("region_map", "site_map") if scenario.kind == "region" else ("site_map", "region_map")
    first_key, second_key = ("region", "site") if scenario.kind == "region" else ("site", "region")
    ident = "v.asset_id, v.site, v.region, " if per_vm else ""
    return f"""
    CREATE OR REPLACE TEMP TABLE affected AS
    WITH v AS (
        SELECT {ident}v.platform, v.environment, v.state, v.dr_group, v.instance_type, v.snapshot_age_hours, v.rpo_hours,
               v.rebuildable, {_vcpu("v")} AS vcpu, {_memory('v')} AS memory_gib,
               coalesce(m1.target, m2.target, '{UNMAPPED}') AS target
        FROM vm_dr_all v LEFT JOIN types ty USING (platform, instance_type)
        LEFT JOIN {first} m1 ON m1.{first_key} = v.{first_key}
        LEFT JOIN {second} m2 ON m2.{second_key} = v.{second_key}
        WHERE v.{scenario.kind} = $value AND v.state <> 'terminated'
          AND ($environment::VARCHAR IS NULL OR v.environment = $environment)
    ),
    c AS (SELECT *, {SIZE_CLASS_SQL.format(v='vcpu')} AS size_class FROM v)
    SELECT c.*, e.estimate_seconds AS rto_estimate_seconds, o.rto_objective_seconds
    FROM c
    LEFT JOIN est e USING (platform, size_class)
    LEFT JOIN rto_objectives o USING (environment)
    """


_EST = f"""
CREATE OR REPLACE TEMP TABLE est AS
SELECT d.platform, {SIZE_CLASS_SQL.format(v=_vcpu('d'))} AS size_class,
       median(d.rto_seconds) AS estimate_seconds, count(DISTINCT d.drill_id)::INTEGER AS drills,
       count(*)::INTEGER AS measured_vms, max(d.started_at) AS newest_drill_at
FROM drills d LEFT JOIN types ty USING (platform, instance_type), as_of n
WHERE d.outcome = 'passed' AND d.rto_seconds IS NOT NULL AND d.started_at <= n.as_of
  AND d.started_at > n.as_of - INTERVAL {DRILL_WINDOW_DAYS} DAY
GROUP BY ALL
"""

_RTO = """
SELECT a.platform, a.size_class, count(*)::INTEGER AS vms, any_value(e.estimate_seconds) AS estimate_seconds,
       coalesce(any_value(e.drills), 0)::INTEGER AS drills, coalesce(any_value(e.measured_vms), 0)::INTEGER AS measured_vms,
       strftime(any_value(e.newest_drill_at) AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS newest_drill_at
FROM affected a LEFT JOIN est e USING (platform, size_class)
GROUP BY ALL ORDER BY a.platform, a.size_class
"""

_CAPACITY = """
WITH need AS (
    SELECT target, count(*)::INTEGER AS vms, count(*) FILTER (WHERE state = 'running')::INTEGER AS running_vms,
           coalesce(sum(vcpu) FILTER (WHERE state = 'running'), 0)::BIGINT AS vcpu_needed,
           round(coalesce(sum(memory_gib) FILTER (WHERE state = 'running'), 0), 1) AS memory_gib_needed,
           count(*) FILTER (WHERE state = 'running' AND vcpu IS NULL)::INTEGER AS unknown_size_vms,
           list_sort(list_distinct(list(platform || ':' || coalesce(instance_type, '(none)'))
                                   FILTER (WHERE state = 'running' AND vcpu IS NULL))) AS unknown_types
    FROM affected GROUP BY target
)
SELECT n.*, t.vcpu AS vcpu_configured, t.memory_gib AS memory_gib_configured, t.target_site
FROM need n LEFT JOIN targets t USING (target) ORDER BY n.target
"""

_RPO = """
SELECT environment, any_value(rpo_hours)::INTEGER AS rpo_objective_hours, count(*)::INTEGER AS vms,
       count(*) FILTER (WHERE snapshot_age_hours IS NULL)::INTEGER AS no_restore_point,
       count(*) FILTER (WHERE snapshot_age_hours > rpo_hours)::INTEGER AS over_objective,
       round(max(snapshot_age_hours), 1) AS max_exposure_hours,
       round(quantile_cont(snapshot_age_hours, 0.95), 1) AS p95_exposure_hours,
       round(median(snapshot_age_hours), 1) AS median_exposure_hours
FROM affected GROUP BY environment ORDER BY environment
"""

_GROUPS = """
WITH cell AS (  -- per group x target x environment first: no per-row lists over a million VMs
    SELECT dr_group, target, environment, count(*) AS vms,
           count(*) FILTER (WHERE rto_estimate_seconds IS NULL) AS rto_unmeasured,
           count(*) FILTER (WHERE rto_estimate_seconds > rto_objective_seconds) AS rto_exceeded,
           count(*) FILTER (WHERE snapshot_age_hours IS NULL) AS no_restore_point,
           count(*) FILTER (WHERE snapshot_age_hours > rpo_hours) AS rpo_exceeded,
           count(*) FILTER (WHERE NOT rebuildable) AS not_rebuildable,
           max(rto_estimate_seconds) AS rto_max, min(rto_objective_seconds) AS rto_objective,
           max(snapshot_age_hours) AS exposure_max, min(rpo_hours) AS rpo_objective
    FROM affected GROUP BY dr_group, target, environment
)
SELECT dr_group AS "group", string_agg(DISTINCT environment, ',' ORDER BY environment) AS environment,
       sum(vms)::INTEGER AS vms, list_sort(list_distinct(list(target))) AS targets,
       coalesce(sum(vms) FILTER (WHERE target = '{unmapped}'), 0)::INTEGER AS no_target,
       coalesce(sum(vms) FILTER (WHERE list_contains($short::VARCHAR[], target)), 0)::INTEGER AS capacity_short,
       coalesce(sum(vms) FILTER (WHERE list_contains($lost::VARCHAR[], target)), 0)::INTEGER AS target_lost,
       sum(rto_unmeasured)::INTEGER AS rto_unmeasured, sum(rto_exceeded)::INTEGER AS rto_exceeded,
       sum(no_restore_point)::INTEGER AS no_restore_point, sum(rpo_exceeded)::INTEGER AS rpo_exceeded,
       sum(not_rebuildable)::INTEGER AS not_rebuildable,
       max(rto_max) AS rto_estimate_seconds_max, min(rto_objective) AS rto_objective_seconds,
       round(max(exposure_max), 1) AS rpo_exposure_hours_max, min(rpo_objective)::INTEGER AS rpo_objective_hours
FROM cell GROUP BY dr_group ORDER BY dr_group
""".replace("{unmapped}", UNMAPPED)


def _capacity_rows(rows: list[dict], targets: DrTargets, scenario: Scenario) -> tuple[list[dict], list[str], list[str]]:
    """Per target: needed vs available, and which targets are short or lost."""
    out, short, lost = [], [], []
    for r in rows:
        name = r["target"]
        if name == UNMAPPED:
            available_vcpu = available_mem = 0
            note = "no DR target mapped for these VMs' site or region"
        elif targets.lost(name, scenario):
            available_vcpu = available_mem = 0
            note = f"target lies in the lost {scenario.kind} {scenario.value}"
            lost.append(name)
        else:
            available_vcpu, available_mem = r["vcpu_configured"], r["memory_gib_configured"]
            note = None
        fits = r["vcpu_needed"] <= available_vcpu and r["memory_gib_needed"] <= available_mem and name != UNMAPPED
        if not fits and name != UNMAPPED and name not in lost:
            short.append(name)
        out.append({
            "target": name, "site": r["target_site"], "vms": r["vms"], "running_vms": r["running_vms"],
            "vcpu_needed": int(r["vcpu_needed"]), "vcpu_available": int(available_vcpu),
            "memory_gib_needed": float(r["memory_gib_needed"]), "memory_gib_available": float(available_mem),
            "fits": bool(fits), "unknown_size_vms": r["unknown_size_vms"], "unknown_types": r["unknown_types"] or [],
            "note": note,
        })
    return out, short, lost


def _rto_rows(rows: list[dict]) -> list[dict]:
    for r in rows:
        if r["estimate_seconds"] is None:
            r["method"] = (f"unmeasured: no passed drill of {r['platform']} {r['size_class']} VMs in the "
                           f"{DRILL_WINDOW_DAYS} days up to the day")
        else:
            r["estimate_seconds"] = round(float(r["estimate_seconds"]), 1)
            r["method"] = (f"median RTO of {r['measured_vms']} VM(s) in {r['drills']} passed drill(s) of {r['platform']} "
                           f"{r['size_class']} VMs in the {DRILL_WINDOW_DAYS} days up to the day")
    return rows


def _verdicts(rows: list[dict]) -> list[dict]:
    for g in rows:
        reasons = [{"reason": key, "why": why, "vms": g[key]} for key, why in REASONS.items() if g[key]]
        g["verdict"] = "breached" if reasons else "met"
        g["reasons"] = reasons
        for key in REASONS:
            del g[key]
    return rows


def simulate(wh: Warehouse, scenario: Scenario, targets: DrTargets, types: InstanceTypes, day: date | str | None = None,
             threads: int | None = None) -> Simulation:
    """Simulate losing ``scenario`` on ``day`` (default: the newest day with vm_dr), as of the end of that day."""
    day_s = day.isoformat() if isinstance(day, date) else (day or newest_day(wh))
    as_of = end_of_day(date.fromisoformat(day_s))
    # A cursor of the process's database (~0.5 ms) unless a thread count is asked for (a database of its own).
    con = sql.session() if threads is None else sql.connect(threads)
    with con:
        return _simulate(con, wh, scenario, targets, types, day_s, as_of)


def _simulate(con: duckdb.DuckDBPyConnection, wh: Warehouse, scenario: Scenario, targets: DrTargets,
              types: InstanceTypes, day_s: str, as_of: datetime) -> Simulation:
    try:
        sources = _register_inputs(con, wh, day_s, targets, types, as_of)
    except PartitionMissing as exc:
        raise SimulationError(str(exc)) from None
    con.execute(_EST)
    con.execute(_affected_sql(scenario), {"value": scenario.value, "environment": scenario.environment})
    affected, running = sql.one(con, "SELECT count(*), count(*) FILTER (WHERE state = 'running') FROM affected")
    capacity, short, lost = _capacity_rows(sql.table(con, _CAPACITY).to_pylist(), targets, scenario)
    rto = _rto_rows(sql.table(con, _RTO).to_pylist())
    by_env = sql.table(con, _RPO).to_pylist()
    rpo = {
        "measured_as": "age of the newest restore point at the end of the day (data a failover now would lose)",
        "vms_without_restore_point": sum(r["no_restore_point"] for r in by_env),
        "vms_over_objective": sum(r["over_objective"] for r in by_env),
        "max_exposure_hours": max((r["max_exposure_hours"] for r in by_env if r["max_exposure_hours"] is not None), default=None),
        "by_environment": by_env,
    }
    groups = _verdicts(sql.table(con, _GROUPS, {"short": short, "lost": lost}).to_pylist())
    return Simulation(scenario, day_s, as_of, int(affected), int(running), groups, capacity, rto, rpo, sources)


def affected_vms(wh: Warehouse, scenario: Scenario, targets: DrTargets, types: InstanceTypes, day: str,
                 limit: int = 500) -> pa.Table:
    """The affected VMs themselves (worst exposure first, at most `limit`): what the dashboard lists."""
    con = sql.connect(2)
    _register_inputs(con, wh, day, targets, types, end_of_day(date.fromisoformat(day)))
    con.execute(_EST)
    con.execute(_affected_sql(scenario, per_vm=True), {"value": scenario.value, "environment": scenario.environment})
    return sql.table(con, """
        SELECT asset_id, platform, site, region, environment, dr_group AS "group", instance_type, size_class, target,
               round(rto_estimate_seconds, 1) AS rto_estimate_seconds, rto_objective_seconds,
               snapshot_age_hours AS rpo_exposure_hours, rpo_hours AS rpo_objective_hours, rebuildable
        FROM affected ORDER BY snapshot_age_hours DESC NULLS FIRST, asset_id LIMIT $limit""", {"limit": limit})


__all__ = ["DRILL_WINDOW_DAYS", "REASONS", "UNMAPPED", "Simulation", "SimulationError", "affected_vms", "end_of_day",
           "newest_day", "simulate"]
