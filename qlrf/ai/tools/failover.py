"""simulate_failover: the DR simulator's what-if (qlrf.dr.simulation), as a read-only tool.

Losing a site, a region or a platform: affected VMs and groups, capacity needed at the DR targets
against what is configured (policy/dr_targets.yaml), RTO estimated from measured drills of the same
platform and size class (or "unmeasured", never guessed), RPO exposure from restore-point age, and a
verdict per group. Reads the warehouse only, and cites what it read (the vm_dr partitions, the
drill rows in the window, the target map). With no site, region or platform there is nothing to
lose: the tool says so and reports what vm_dr knows for the scope, as before.
"""

from __future__ import annotations

from pydantic import Field

from qlrf.ai.tools.context import ToolContext, day_of, select_day
from qlrf.ai.tools.fleet import Scope

MISSING = (
    {"what": "failure scope", "why": "name the site, region or platform whose loss to simulate"},
)
TOP_GROUPS = 10

_QUERY = """
SELECT gap, count(*)::INTEGER AS vms, count(*) FILTER (WHERE ready)::INTEGER AS ready FROM t
WHERE ($platform::VARCHAR IS NULL OR platform = $platform) AND ($site::VARCHAR IS NULL OR site = $site)
  AND ($environment::VARCHAR IS NULL OR environment = $environment)
GROUP BY gap ORDER BY vms DESC, gap
"""


class FailoverQuery(Scope):
    """The scope whose loss is simulated: a site, else a region, else a platform (environment narrows it)."""

    region: str | None = Field(None, description="a region to lose (e.g. us-east-1), when no site is named")


def _readiness(ctx: ToolContext, q: FailoverQuery) -> tuple[dict, dict]:
    groups, facts = select_day(ctx, "vm_dr", q.day, _QUERY, q.model_dump(exclude={"day", "region"}))
    return {"vms": sum(g["vms"] for g in groups), "dr_ready": sum(g["ready"] for g in groups),
            "gaps": {g["gap"]: g["vms"] for g in groups if g["gap"] is not None}}, facts


def simulate_failover(ctx: ToolContext, q: FailoverQuery) -> dict:
    from qlrf.dr.simulation import simulate
    from qlrf.dr.targets import configured_targets
    from qlrf.inventory.instance_types import default_instance_types

    kind = next((k for k in ("site", "region", "platform") if getattr(q, k)), None)
    if kind is None:
        readiness, facts = _readiness(ctx, q)
        return {"simulated": False, "answer": "not simulated: no site, region or platform to lose was named",
                "missing": list(MISSING), "readiness": readiness, "facts": facts}
    day = day_of(ctx, "vm_dr", q.day)
    targets = configured_targets()
    sim = simulate(ctx.warehouse, targets.scenario(kind, getattr(q, kind), q.environment), targets,
                   default_instance_types(), day, threads=1)
    result = sim.as_dict()
    breached = sorted(sim.breached, key=lambda g: (-g["vms"], g["group"]))
    return {
        "simulated": True,
        "answer": f"losing {kind} {getattr(q, kind)}: {result['groups_breached']} of {result['affected_groups']} groups "
                  "would breach their objectives",
        "scenario": result["scenario"], "affected_vms": result["affected_vms"],
        "affected_groups": result["affected_groups"], "groups_breached": result["groups_breached"],
        "capacity": result["capacity"], "rto": result["rto"],
        "rto_measured_classes": sum(1 for r in result["rto"] if r["estimate_seconds"] is not None),
        "rpo": {k: v for k, v in result["rpo"].items() if k != "by_environment"},
        "breached_groups": [{"group": g["group"], "vms": g["vms"], "reasons": [r["reason"] for r in g["reasons"]]}
                            for g in breached[:TOP_GROUPS]],
        "facts": {"table": "vm_dr", "day": result["day"], "partitions": result["sources"]["vm_dr"],
                  "drills_in_window": result["sources"]["dr_drills_rows_in_window"],
                  "targets": result["sources"]["targets"], "as_of": result["as_of"],
                  "method": "qlrf.dr.simulation: RTO = median of passed drills of the same platform and size class "
                            "within 180 days; RPO exposure = restore-point age at the end of the day"},
    }
