"""Benchmark: the approval queue after a sample day's run (issue 12 item 8; goal <= 25 pending tasks).

    .venv/bin/python bench/bench_queue.py [--days 1] [--warehouse DIR]

Materialises the default sample estate (12,200 VMs, every platform) for 2026-11-20 (and the next
days with ``--days``) as the daily run does, unless ``--warehouse`` names one already built, then
plans every finding of each day exactly as remediation_planning_job does (qlrf.remediation.service
.propose_day: findings, plans, the embedded Rego gate's previews, TaskStore.propose with one open
plan per site x environment x platform and the policy's ``queue.max_pending``) into a fresh SQLite
task store. Prints per day: findings, plans built, what was proposed (by state), plans left for
later because their scope had an open plan, groups left out for mixing image families, then
pending, deferred (queue full), displaced (outranked), superseded, and the queue by risk and
environment, then the goal check.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_DAY = date(2026, 11, 20)
GOAL = 25


def main() -> int:
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--warehouse", help="an already materialised warehouse holding the days")
    args = parser.parse_args()

    from qlrf.remediation import service
    from qlrf.remediation.approvals import TaskStore
    from qlrf.remediation.audit import AuditLog
    from qlrf.remediation.gate import Gate
    from qlrf.remediation.planner import MIXED_GROUP
    from qlrf.remediation.policy import RemediationPolicy
    from qlrf.warehouse import Warehouse

    days = [(FIRST_DAY + timedelta(days=n)).isoformat() for n in range(args.days)]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        if args.warehouse:
            root = Path(args.warehouse)
        else:
            from tests.helpers import materialize_day

            root = base / "warehouse"
            for day in days:
                t0 = time.perf_counter()
                results = materialize_day(root, base / "estate", day)
                if not all(r.success for r in results):
                    print(f"materialising {day} failed", file=sys.stderr)
                    return 1
                print(f"materialised {day} in {time.perf_counter() - t0:.1f} s")
        url = f"sqlite:///{base / 'tasks.db'}"
        store = TaskStore(url, audit=AuditLog(url))
        wh, policy, gate = Warehouse(str(root)), RemediationPolicy.load(), Gate.embedded()
        pending = 0
        for day in days:
            t0 = time.perf_counter()
            outcomes = service.propose_day(wh, policy, store, gate, day=day, requested_by="sensor:drift_findings_sensor")
            seconds = time.perf_counter() - t0
            states = Counter(p.state for o in outcomes for p in o.proposed)
            in_scope = sum(len(o.deferred) for o in outcomes)
            deferred = sum(len(o.queue_deferred) for o in outcomes)  # scopes
            deferred_plans = sum(d["plans"] for o in outcomes for d in o.queue_deferred)
            displaced = sum(len(o.displaced) for o in outcomes)
            mixed = sum(1 for o in outcomes for n in o.skipped if n.startswith(MIXED_GROUP))
            queue = store.list(states="pending_approval")
            pending = len(queue)
            by_risk = Counter(t.risk_level for t in queue)
            by_env = Counter(t.environment for t in queue)
            rejected = [t.reason or "" for t in store.list(states="rejected")]
            superseded = sum(1 for r in rejected if r.startswith("superseded by"))
            outranked = sum(1 for r in rejected if r.startswith("deferred: outranked by"))
            print(f"{day}: {len(outcomes)} findings, {sum(states.values()) + in_scope + deferred_plans} plans built, proposed "
                  f"{dict(sorted(states.items()))}, {in_scope} left for later (scope had an open plan), "
                  f"{mixed} mixed-family groups not planned; planning took {seconds:.1f} s")
            print(f"{day}: pending {pending} (limit {policy.queue.max_pending}), deferred {deferred} scope(s) / {deferred_plans} plan(s) (queue full), "
                  f"displaced {displaced} (outranked), superseded so far {superseded}, outranked so far {outranked}; "
                  f"queue by risk {dict(sorted(by_risk.items()))}, by environment {dict(sorted(by_env.items()))}")
        gate.close()
    verdict = "meets" if pending <= GOAL else "MISSES"
    print(f"pending tasks after {len(days)} day(s): {pending} ({verdict} the goal <= {GOAL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
