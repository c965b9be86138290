"""Time the orchestrator's validation pipeline per question over one sample day (12,200 VMs).

    .venv/bin/python bench/bench_ask.py [--warehouse DIR] [--runs 20]

The proposer is scripted (the one the tests use): it calls the real tools through the orchestrator's
screened ToolBox and returns a fixed draft, so the figures are the pipeline's own cost (screening,
tool calls, schema, scope resolution over DuckDB/Parquet, the planner, both Rego gates, the task
store and the audit record), not a router's or a model's. Three paths: a read-only answer, a
``remediate_drift`` request that ends as a pending task (the first run inserts it; later runs find it
by its hash, so they pay everything but the insert), and a request refused at the scope step.
Without ``--warehouse`` the sample day 2026-11-20 is materialised into a temp dir first (not timed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qlrf.ai.orchestrator import Orchestrator  # noqa: E402
from qlrf.ai.validation import AI_TASK_DECISION_PATH  # noqa: E402
from qlrf.remediation.approvals import TaskStore  # noqa: E402
from qlrf.remediation.audit import AuditLog  # noqa: E402
from qlrf.remediation.gate import Gate  # noqa: E402
from qlrf.remediation.policy import RemediationPolicy  # noqa: E402
from qlrf.warehouse import Warehouse  # noqa: E402
from tests.ai.orchestrator.conftest import Scripted, proposal  # noqa: E402

DAY = "2026-11-20"
PATHS = {
    "answer": ("which prod VMs in syd1 still run revoked images?",
               lambda: Scripted("drift", "answer", tools=(("query_assets", {"site": "syd1", "environment": "prod"}),))),
    "remediate_drift -> task": ("patch the revoked images in syd1 dev",
                                lambda: Scripted("patch", "remediate_drift",
                                                 lambda i: proposal(i, site="syd1", environment="dev"),
                                                 tools=(("get_drift_status", {"site": "syd1", "environment": "dev"}),))),
    "refused at scope": ("patch the revoked images in syd1 dev",
                         lambda: Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1"))),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", help="a warehouse with the day materialised (default: build one)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        warehouse = args.warehouse
        if warehouse is None:
            from tests.helpers import materialize_day

            started = time.perf_counter()
            results = materialize_day(Path(tmp) / "warehouse", Path(tmp) / "estate", DAY)
            assert all(r.success for r in results)
            warehouse = str(Path(tmp) / "warehouse")
            print(f"materialised {DAY} in {time.perf_counter() - started:.1f} s (not timed below)")
        url = f"sqlite:///{Path(tmp) / 'tasks.db'}"
        audit = AuditLog(url)
        store = TaskStore(url, audit=audit)
        ai_gate, plan_gate = Gate.embedded(decision_path=AI_TASK_DECISION_PATH), Gate.embedded()
        for name, (intent, proposer) in PATHS.items():
            times = []
            outcome = None
            for _ in range(args.runs):
                orchestrator = Orchestrator(proposers=[proposer()], warehouse=Warehouse(warehouse), store=store,
                                            audit=audit, policy=RemediationPolicy.load(), ai_gate=ai_gate,
                                            plan_gate=plan_gate)
                started = time.perf_counter()
                result = orchestrator.ask(intent, requested_by="cli:bench")
                times.append((time.perf_counter() - started) * 1000)
                outcome = result.refused_by or result.task_id or "answered"
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            print(f"{name:<26} runs {args.runs:>3}  median {statistics.median(times):7.1f} ms  p95 {p95:7.1f} ms  "
                  f"outcome {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
