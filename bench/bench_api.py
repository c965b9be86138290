"""Benchmark the HTTP API as deployed: `python -m qlrf.api` (uvicorn) in its own process, over loopback.

    .venv/bin/python bench/bench_api.py [--tasks 1000] [--n 200]

A fresh QLRF_HOME gets `--tasks` pending tasks (real sealed plans through the task store, each with
its audit records) before the server starts; then, with one keep-alive httpx client, each request
kind is timed `--n` times (approvals: one per task, so every call is a real state change). Printed:
start-up to the first /healthz, and per request kind the median and p95 in milliseconds. The load
average is printed because this machine is shared and its other work moves the numbers.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402

from qlrf.api.identity import token_digest  # noqa: E402
from tests.fakes.base import free_port  # noqa: E402
from tests.remediation.support import PENDING, make_plan  # noqa: E402

TOKEN = "bench-token-7c1f0e9b2d"


def populate(home: Path, env: dict[str, str], count: int) -> list[tuple[str, str]]:
    """(task id, plan hash) of `count` pending tasks in the home's SQLite task store, requested by "sensor"."""
    from qlrf.remediation.approvals import TaskStore
    from qlrf.remediation.audit import AuditLog

    os.environ.update(env)  # the bench's own process opens the same database and anchor as the server
    store = TaskStore(audit=AuditLog())
    made = [store.propose(make_plan(f"bench-{n}", environment="prod" if n % 2 else "dev"), "sensor", PENDING)
            for n in range(count)]
    return [(t.id, t.plan_hash) for t in made]


def timed(call, n: int) -> tuple[float, float]:
    times = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        tokens = home / "tokens.yaml"
        tokens.write_text(yaml.safe_dump({token_digest(TOKEN): "bench-approver"}), encoding="utf-8")
        tokens.chmod(0o600)
        port = free_port()
        env = {"QLRF_HOME": str(home / "home"), "QLRF_AUDIT_DIR": str(home / "audit"), "QLRF_API_PORT": str(port),
               "QLRF_API_TOKENS_FILE": str(tokens)}
        started = time.perf_counter()
        tasks = populate(home, env, args.tasks)
        print(f"proposed {len(tasks)} tasks in {time.perf_counter() - started:.1f} s")

        server_env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))} | env
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "qlrf.api"], cwd=ROOT, env=server_env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
                while True:
                    try:
                        client.get("/healthz")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                print(f"start-up to first /healthz: {time.perf_counter() - started:.2f} s")
                n = min(args.n, len(tasks))
                kinds = {
                    "GET /healthz": lambda i: client.get("/healthz"),
                    "GET /readyz (policy cached)": lambda i: client.get("/readyz"),
                    f"GET /api/v1/tasks?limit=50 ({len(tasks)} tasks)": lambda i: client.get(
                        "/api/v1/tasks", params={"limit": 50, "offset": (i * 50) % len(tasks)}),
                    "GET /api/v1/tasks/{id} (plan parsed)": lambda i: client.get(f"/api/v1/tasks/{tasks[i][0]}"),
                    "POST /api/v1/tasks/{id}/approve": lambda i: _ok(client.post(
                        f"/api/v1/tasks/{tasks[i][0]}/approve", json={"plan_hash": tasks[i][1], "reason": "bench"})),
                    "401 (unknown token)": lambda i: client.get("/api/v1/tasks", headers={"Authorization": "Bearer nope"}),
                }
                for name, call in kinds.items():
                    median, p95 = timed(call, n)
                    print(f"{name:<48} median {median:7.2f} ms   p95 {p95:7.2f} ms   (n={n})")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    return 0


def _ok(response: httpx.Response) -> httpx.Response:
    if response.status_code != 200:
        raise SystemExit(f"approval failed: {response.status_code} {response.text}")
    return response


if __name__ == "__main__":
    sys.exit(main())
