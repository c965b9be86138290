"""Discovery of a many-scope estate: one serial step vs the scope fan-out (issue 16 item 2).

The estate: 200 GCP projects (5 instances each, disks, snapshots, MIGs, images) served by the in-repo
GCE fake (tests/fakes/gcp_fake.py) in its own process, through the real google-cloud-compute client.
Then, interleaved A B A B A B (bench/sidebyside.py), each a fresh process, imports included:

- serial: today's one step, `discover(config)` over every project on the connector's thread pool;
- fanout: the plan `assets/discovery.py` makes (qlrf/inventory/scopes.py: QLRF_SCOPES_PER_STEP
  projects per step), the batches on a pool of worker processes (what the multiprocess, Celery or
  k8s executor does with the `discover_scope` steps, without Dagster's per-step overhead), merged.

Each side prints a digest of everything it found (rows, snapshots, facts, failed scopes, in order); a
run whose digest differs from the other side's is refused. Prints medians, min-max, the ratio and
the load average.

    .venv/bin/python bench/bench_fanout.py [--projects 200] [--per-step 25] [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.sidebyside import PYTHON, Side, interleave, load_line, ratio  # noqa: E402

AT = datetime(2026, 11, 27, 6, tzinfo=UTC)


def _fixture(projects: int) -> dict:
    from tests.fakes.fixtures import gcp_fixture

    return gcp_fixture(projects=projects, instances_per_project=5, zonal_mig_size=2)


def serve(projects: int) -> None:
    """The GCE fake in this process until SIGTERM; prints its URL on the first line."""
    from tests.fakes.gcp_fake import start_gcp_fake

    with start_gcp_fake(_fixture(projects)) as fake:
        print(fake.base_url, flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})


def _config(endpoint: str, projects: list[str]):
    from google.auth.credentials import AnonymousCredentials

    from qlrf.inventory.connectors.gcp import GcpConfig

    return GcpConfig(projects=projects, api_endpoint=endpoint, credentials=AnonymousCredentials())


def _discover(endpoint: str, projects: list[str]):
    from qlrf.inventory.connectors.gcp import discover
    from qlrf.inventory.tags import TagMapping

    return discover(_config(endpoint, projects), mapping=TagMapping.from_file(None), discovered_at=AT)


def _batch(endpoint: str, index: int, projects: list[str]):
    return index, _discover(endpoint, projects)


def _plain(value: object) -> object:
    """JSON for what rows hold: sets sorted (their repr order changes with each process's hash seed)."""
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def _rows(rows: list) -> list[str]:
    # Sorted: the live GCP connector's row order within a project follows its page fetches (it differs
    # between two serial runs too); the rows themselves must be the same.
    return sorted(json.dumps(row, default=_plain, sort_keys=True) for row in rows)


def digest(found) -> str:
    """Everything found (rows, snapshots, fact tables, failed scopes, rejected records) as one hash."""
    parts = [_rows(found.vms), _rows(found.snapshots), {k: _rows(v) for k, v in sorted(found.facts.items())},
             found.failed_scopes, sorted(str(e) for e in found.errors)]
    text = json.dumps(parts)
    return f"{len(found.vms)} VMs, {len(found.failed_scopes)} failed scopes, digest {hashlib.sha256(text.encode()).hexdigest()[:16]}"


def side(name: str, endpoint: str, projects: list[str], per_step: int, workers: int) -> None:
    from qlrf.inventory import scopes as plan

    if name == "serial":
        print(digest(_discover(endpoint, projects)))
        return
    batches = plan.batches(plan.live_scopes("gcp", _config(endpoint, projects)), per_step, source="live", discovered_at=AT)
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(_batch, endpoint, b.index, [s.key for s in b.scopes]) for b in batches]
        parts = [f.result() for f in futures]
    print(digest(plan.merge("gcp", parts)) + f" ({len(batches)} steps on {workers} workers)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--per-step", type=int, default=25)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=("serial", "fanout"), help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.projects)
        return 0
    project_ids = list(_fixture(args.projects)["workload_projects"])
    if args.side:
        side(args.side, args.endpoint, project_ids, args.per_step, args.workers)
        return 0

    server = subprocess.Popen([PYTHON, __file__, "--serve", "--projects", str(args.projects)],
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        endpoint = server.stdout.readline().strip()
        print(f"discovery fan-out: {len(project_ids)} GCP projects x 5 instances on the GCE fake ({endpoint}), "
              f"{args.per_step} projects per step, {args.workers} worker processes")
        print(f"  before: {load_line()}")
        outputs: dict[str, str] = {}

        def same_result(name: str):
            def check(text: str) -> None:
                found = text.strip().split(" (")[0]
                outputs.setdefault("result", found)
                if found != outputs["result"]:
                    raise AssertionError(f"{name} found {found}, the other side {outputs['result']}")
            return check

        common = [PYTHON, __file__, "--projects", str(args.projects), "--endpoint", endpoint,
                  "--per-step", str(args.per_step), "--workers", str(args.workers)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        sides = [Side(name, [*common, "--side", name], env=env, cwd=ROOT, check=same_result(name))
                 for name in ("serial", "fanout")]
        started = time.perf_counter()
        summaries = interleave(sides, rounds=args.rounds)
        print(f"  result (both sides): {outputs['result']}")
        for summary in summaries.values():
            print(f"  {summary.line()}")
        print(f"  fanout / serial: {ratio(summaries['fanout'], summaries['serial']):.2f}x "
              f"({time.perf_counter() - started:.0f} s in all)")
        print(f"  after: {load_line()}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
