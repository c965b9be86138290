"""The configured failover scenarios, evaluated for a day: one row each, the whole answer kept as JSON.

What the ``dr_failover_scenarios`` asset writes and the fleet report's DR section reads. A scenario
whose simulation cannot run (no vm_dr for the day) fails the asset, naming the partition; nothing is
written, so yesterday's answer stays in force.
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from qlrf.dr.simulation import simulate
from qlrf.dr.targets import DrTargets, configured_targets
from qlrf.inventory.instance_types import InstanceTypes, default_instance_types
from qlrf.warehouse import Warehouse

TABLE = "dr_failover_scenarios"
SCHEMA = pa.schema([
    ("scenario", pa.string()), ("kind", pa.string()), ("value", pa.string()), ("environment", pa.string()),
    ("affected_vms", pa.int64()), ("affected_groups", pa.int64()), ("groups_breached", pa.int64()),
    ("capacity_fits", pa.bool_()), ("vcpu_needed", pa.int64()), ("vcpu_available", pa.int64()),
    ("rto_unmeasured_vms", pa.int64()), ("vms_over_rpo", pa.int64()), ("vms_without_restore_point", pa.int64()),
    ("verdict", pa.string()), ("detail", pa.string()),
])


def evaluate_scenarios(wh: Warehouse, day: date, targets: DrTargets | None = None,
                       types: InstanceTypes | None = None) -> tuple[pa.Table, list[str]]:
    """(one row per configured scenario, the names configured)."""
    targets = targets or configured_targets()
    types = types or default_instance_types()
    rows = []
    for scenario in targets.scenarios:
        sim = simulate(wh, scenario, targets, types, day)
        d = sim.as_dict()
        rows.append({
            "scenario": scenario.name, "kind": scenario.kind, "value": scenario.value, "environment": scenario.environment,
            "affected_vms": sim.affected_vms, "affected_groups": d["affected_groups"], "groups_breached": d["groups_breached"],
            "capacity_fits": all(c["fits"] for c in sim.capacity),
            "vcpu_needed": sum(c["vcpu_needed"] for c in sim.capacity),
            "vcpu_available": sum(c["vcpu_available"] for c in sim.capacity),
            "rto_unmeasured_vms": sum(r["vms"] for r in sim.rto if r["estimate_seconds"] is None),
            "vms_over_rpo": sim.rpo["vms_over_objective"], "vms_without_restore_point": sim.rpo["vms_without_restore_point"],
            "verdict": "breached" if d["groups_breached"] or not all(c["fits"] for c in sim.capacity) else "met",
            "detail": sim.to_json(),
        })
    return pa.Table.from_pylist(rows, schema=SCHEMA), [s.name for s in targets.scenarios]


__all__ = ["SCHEMA", "TABLE", "evaluate_scenarios"]
