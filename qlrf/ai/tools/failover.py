"""simulate_failover: the honest answer until the DR simulator (issue 13) exists.

A failover simulation needs drill plans (what fails over to where, in which order) and a simulator
that replays them; neither exists yet. So the tool does not simulate and never states an RTO or
RPO: it says exactly what is missing, and reports what vm_dr already knows for the scope (how many
VMs, how many are DR-ready, and the gaps by reason), citing the partitions it read.
"""

from __future__ import annotations

from qlrf.ai.tools.context import ToolContext, select_day
from qlrf.ai.tools.fleet import Scope

MISSING = (
    {"what": "drill plans", "why": "no failover drill plan (source, target, order, runbook) is recorded for any scope"},
    {"what": "failover simulator", "why": "the DR simulator (issue 13) is not built, so no RTO or RPO of a "
                                          "failover can be computed"},
)

_QUERY = """
SELECT gap, count(*)::INTEGER AS vms, count(*) FILTER (WHERE ready)::INTEGER AS ready FROM t
WHERE ($platform::VARCHAR IS NULL OR platform = $platform) AND ($site::VARCHAR IS NULL OR site = $site)
  AND ($environment::VARCHAR IS NULL OR environment = $environment)
GROUP BY gap ORDER BY vms DESC, gap
"""


class FailoverQuery(Scope):
    """The scope whose failover is asked about (a VM-level simulation needs the simulator too)."""


def simulate_failover(ctx: ToolContext, q: FailoverQuery) -> dict:
    groups, facts = select_day(ctx, "vm_dr", q.day, _QUERY, q.model_dump(exclude={"day"}))
    readiness = {"vms": sum(g["vms"] for g in groups), "dr_ready": sum(g["ready"] for g in groups),
                 "gaps": {g["gap"]: g["vms"] for g in groups if g["gap"] is not None}}
    return {"simulated": False, "answer": "not available: no failover can be simulated yet",
            "missing": list(MISSING), "readiness": readiness, "facts": facts}
