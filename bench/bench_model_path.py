"""Benchmark the model path's own overhead: one ModelProposer draft against the loopback model.

    .venv/bin/python bench/bench_model_path.py [--n 30]

A draft here is the whole model side of one question except the model's thinking time: routing, the
agent conversation (two tool calls through a real ToolBox over a small scored warehouse, each audited
to SQLite), schema validation and grounding, through the real ``openai`` package over HTTP to the
scripted fake (tests/fakes/openai_fake.py). The fake's token counts are characters / 4, so the token
and cost lines show the size of the conversation, not a vendor's bill. Also timed: how fast a failing
model is given up on (tool abuse, invalid JSON twice), since that time is added before the offline
router answers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyarrow as pa  # noqa: E402

from qlrf.ai.agents import shipped_agents  # noqa: E402
from qlrf.ai.answers import AskContext, ProposerFailed  # noqa: E402
from qlrf.ai.clients import ModelProposer, client_from_env  # noqa: E402
from qlrf.ai.tools import READ_ONLY_TOOLS, ToolBox, ToolContext  # noqa: E402
from qlrf.baselines.contracts import REGISTRY_SCHEMA  # noqa: E402
from qlrf.inventory.contract import inventory_table, snapshot_table  # noqa: E402
from qlrf.remediation.audit import AuditLog  # noqa: E402
from qlrf.scoring import stages  # noqa: E402
from qlrf.warehouse import Warehouse  # noqa: E402
from tests.ai.test_tools import AS_OF, DAY, REGISTRY, VMS  # noqa: E402
from tests.fakes.openai_fake import AgentScript, OpenAIFake  # noqa: E402

INTENT = "patch the revoked images in lon1 prod"
SCRIPT = AgentScript(agent="drift", task_type="remediate_drift",
                     calls=[("query_assets", {"site": "lon1", "environment": "prod"}), ("get_drift_status", {"site": "lon1"})],
                     scope={"site": "lon1", "environment": "prod"})


def warehouse(root: str) -> Warehouse:
    wh = Warehouse(root)
    wh.write("golden_images", pa.Table.from_pylist(REGISTRY, schema=REGISTRY_SCHEMA), DAY)
    wh.write("inventory", inventory_table(VMS), DAY, "aws")
    wh.write("vm_snapshots", snapshot_table([]), DAY, "aws")
    stages.run_drift(wh, DAY, "aws", AS_OF)
    return wh


def context(wh: Warehouse, audit: AuditLog, n: int) -> AskContext:
    tools = ToolContext(wh, audit)

    def toolbox_for(agent: str) -> ToolBox:
        allowed = shipped_agents()[agent].tools
        return ToolBox([t for t in READ_ONLY_TOOLS if t.name in allowed], tools, audit, conversation=f"bench-{n}")

    return AskContext(INTENT, "bench", None, toolbox_for, f"bench-{n}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, OpenAIFake("agent", script=SCRIPT) as fake:
        wh = warehouse(os.path.join(tmp, "wh"))
        audit = AuditLog(f"sqlite:///{tmp}/audit.db")
        client = client_from_env({"QLRF_LLM_BASE_URL": fake.url, "QLRF_LLM_MODEL": "gpt-4o-mini", "QLRF_LLM_TIMEOUT": "10"})
        proposer = ModelProposer(client)
        proposer.draft(context(wh, audit, -1))  # warm-up: imports, DuckDB, the HTTP connection
        times, usage = [], []
        for i in range(args.n):
            start = time.perf_counter()
            draft = proposer.draft(context(wh, audit, i))
            times.append(time.perf_counter() - start)
            usage.append(draft.usage)
        print(f"model path, good draft (route + 2 tool calls + answer), n={args.n}: "
              f"median {statistics.median(times) * 1000:.1f} ms, p95 {pct(times, 0.95) * 1000:.1f} ms")
        u = usage[0]
        print(f"  per draft: {u['requests']} model requests, {u['prompt_tokens']} prompt + {u['completion_tokens']} "
              f"completion tokens (fake counts: chars/4), est. ${u['cost_usd']:.5f} at gpt-4o-mini list prices")
        for scenario in ("unknown_tool", "malformed_twice", "ungrounded"):
            fake.script = AgentScript(**{**SCRIPT.__dict__, "scenario": scenario})
            spent = []
            for i in range(5):
                start = time.perf_counter()
                try:
                    proposer.draft(context(wh, audit, 1000 + i))
                except ProposerFailed:
                    spent.append(time.perf_counter() - start)
                else:
                    raise SystemExit(f"{scenario}: expected ProposerFailed, got a draft")
            print(f"  {scenario}: ProposerFailed after median {statistics.median(spent) * 1000:.1f} ms")
    print(f"load average {os.getloadavg()[0]:.2f} (2 cores, shared machine)")


if __name__ == "__main__":
    main()
