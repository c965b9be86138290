"""Task store reads and writes with row-level security vs without, on the machine's PostgreSQL.

    .venv/bin/python bench/bench_rls.py [--tasks 60] [--runs 5] [--reads 30] [--writes 10]

Two fresh databases, filled once (not timed):

* ``plain``: no RLS, the application connects as the superuser (what a deployment without
  ``qlrf db setup-rls`` does); it holds ``--tasks`` tasks of ``acme``.
* ``rls``: ``qlrf db setup-rls`` applied, the application connects as the application role inside
  ``tenant_scope("acme")``; it holds the same ``--tasks`` tasks of ``acme`` *and* as many of
  ``initech``, which the policy filters out. Both sides read the same rows.

Each run is a fresh process per side, interleaved (plain, rls, plain, rls, ...). A process times
``TaskStore.list()`` (``--reads`` times), ``TaskStore.get`` of every task, and ``--writes`` proposals
(task row, four audit records, each in the per-org chain, one transaction each). Medians of the runs'
per-call times and the rls/plain ratio are printed with the load average.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ADMIN = "postgresql://postgres@127.0.0.1:5432"
PENDING = {"allow": False, "requires_approval": True, "deny": [], "approval_reasons": ["bench"]}


def load() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def plan(org: str, plan_id: str):
    from tests.integration.test_rls_postgres import plan_of

    return plan_of(org, plan_id)


def fill(url: str, orgs: list[str], n: int) -> None:
    from qlrf.remediation.approvals import TaskStore
    from qlrf.remediation.audit import AuditLog
    from qlrf.tenancy.scope import tenant_scope

    store = TaskStore(url, audit=AuditLog(url))
    for org in orgs:
        with tenant_scope(org):
            for i in range(n):
                store.propose(plan(org, f"fill-{org}-{i}"), "sensor:bench", PENDING)


def child(url: str, scoped: bool, reads: int, writes: int) -> None:
    """One side in a fresh process: per-call milliseconds as JSON on stdout."""
    import contextlib

    from qlrf.remediation.approvals import TaskStore
    from qlrf.remediation.audit import AuditLog
    from qlrf.tenancy.scope import tenant_scope

    scope = tenant_scope("acme") if scoped else contextlib.nullcontext()
    with scope:
        store = TaskStore(url, audit=AuditLog(url))
        ids = [t.id for t in store.list()]
        t0 = time.perf_counter()
        for _ in range(reads):
            rows = store.list()
        list_ms = (time.perf_counter() - t0) * 1000 / reads
        t0 = time.perf_counter()
        for task_id in ids:
            store.get(task_id)
        get_ms = (time.perf_counter() - t0) * 1000 / len(ids)
        tag = uuid.uuid4().hex[:8]
        t0 = time.perf_counter()
        for i in range(writes):
            store.propose(plan("acme", f"w-{tag}-{i}"), "sensor:bench", PENDING)
        write_ms = (time.perf_counter() - t0) * 1000 / writes
    print(json.dumps({"rows": len(rows), "list_ms": list_ms, "get_ms": get_ms, "propose_ms": write_ms}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reads", type=int, default=30)
    parser.add_argument("--writes", type=int, default=10)
    parser.add_argument("--child", nargs=2, metavar=("URL", "SCOPED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1] == "1", args.reads, args.writes)
        return 0

    import os
    import tempfile

    import psycopg2

    # The audit anchor (key and head file) of the bench databases lives in a private home, not yours.
    os.environ["QLRF_HOME"] = tempfile.mkdtemp(prefix="qlrf-bench-rls-")
    os.environ.pop("QLRF_POSTGRES_URL", None)

    from qlrf.db import dispose_engines
    from qlrf.tenancy.rls import app_url, setup_rls

    tag = uuid.uuid4().hex[:8]
    names = {"plain": f"qlrf_bench_plain_{tag}", "rls": f"qlrf_bench_rls_{tag}"}
    owner, app = f"qlrf_bench_owner_{tag}", f"qlrf_bench_app_{tag}"
    admin = psycopg2.connect(f"{ADMIN}/postgres")
    admin.autocommit = True
    for name in names.values():
        admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        started = time.perf_counter()
        plain = f"{ADMIN}/{names['plain']}"
        fill(plain, ["acme"], args.tasks)
        rls_admin = f"{ADMIN}/{names['rls']}"
        setup_rls(rls_admin, owner_role=owner, app_role=app)
        rls = app_url(rls_admin, app)
        fill(rls, ["acme", "initech"], args.tasks)
        dispose_engines()
        print(f"filled in {time.perf_counter() - started:.1f} s: plain {args.tasks} acme tasks; "
              f"rls {args.tasks} acme + {args.tasks} initech tasks ({load()})")
        results: dict[str, list[dict]] = {"plain": [], "rls": []}
        for _ in range(args.runs):
            for side, url, scoped in (("plain", plain, "0"), ("rls", rls, "1")):
                done = subprocess.run([sys.executable, __file__, "--child", url, scoped, "--reads", str(args.reads),
                                       "--writes", str(args.writes)], capture_output=True, text=True, check=True)
                results[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
        rows = {side: {r["rows"] for r in runs} for side, runs in results.items()}
        print(f"rows read per list(): plain {sorted(rows['plain'])}, rls {sorted(rows['rls'])} (acme's only)")
        for metric, label in (("list_ms", "TaskStore.list()"), ("get_ms", "TaskStore.get(id)"),
                              ("propose_ms", "TaskStore.propose (task + 4 audit records)")):
            a = statistics.median(r[metric] for r in results["plain"])
            b = statistics.median(r[metric] for r in results["rls"])
            print(f"{label:<44} plain {a:8.2f} ms  rls {b:8.2f} ms  ratio {b / a:5.2f}  "
                  f"(medians of {args.runs} interleaved fresh processes)")
        print(load())
    finally:
        dispose_engines()
        for name in names.values():
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in (app, owner):
            admin.cursor().execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
