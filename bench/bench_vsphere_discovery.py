"""Benchmark: vSphere live discovery of 5,000 VMs from vcsim (goal: under 20 s).

Starts the project's vcsim (tools/vcsim, built by scripts/build-vcsim.sh if needed) with 2 datacenters x
5 clusters x 500 VMs, optionally populates it (custom attributes site/environment/owner/template on
every VM, 3 golden-image templates, 2% of the VMs marked as templates, snapshot chains on 10%), then
times qlrf.inventory.connectors.vsphere.discover end to end: login, custom field definitions, topology,
paged VM collection, documents, normalised rows. Setup (start, populate) is not timed.

    .venv/bin/python bench/bench_vsphere_discovery.py [--vms 5000] [--page-size 1000] [--runs 2] [--no-populate]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyVim.connect import Disconnect  # noqa: E402

from qlrf.inventory.connectors.vsphere import VcenterConfig, VcenterStats, VsphereConfig, discover  # noqa: E402
from qlrf.inventory.tags import TagMapping  # noqa: E402
from tests.servers.vcsim import populate, start_vcsim  # noqa: E402

GOAL_S = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=5000, help="VMs in the model (multiple of 10)")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--no-populate", action="store_true", help="skip custom attributes/snapshots/templates"
    )
    args = parser.parse_args()

    t0 = time.perf_counter()
    with start_vcsim(vms=args.vms, datacenters=2, clusters=5) as server:
        started = time.perf_counter() - t0
        print(f"vcsim: {server.expected_vms} VMs in 2 datacenters x 5 clusters, ready in {started:.1f} s")
        if not args.no_populate:
            si = server.connect()
            try:
                pop = populate(si, seed=11, template_fraction=0.02, snapshot_fraction=0.1)
            finally:
                Disconnect(si)
            print(
                f"populate: attributes on {len(pop.attributes)} VMs, {len(pop.image_templates)} image templates, "
                f"{len(pop.templates)} VMs marked as template, {len(pop.snapshots)} VMs with snapshots "
                f"({pop.elapsed_s:.1f} s, not timed)"
            )
        else:
            print("populate: skipped (no custom attributes, snapshots or templates)")
        config = VsphereConfig(
            vcenters=[
                VcenterConfig(
                    host=server.host,
                    port=server.port,
                    user=server.user,
                    password=server.password,
                    protocol=server.protocol,
                    verify_tls=False,
                )
            ],
            page_size=args.page_size,
        )
        timings = []
        for run in range(1, args.runs + 1):
            stats: list[VcenterStats] = []
            t1 = time.perf_counter()
            out = discover(config, mapping=TagMapping(), discovered_at=datetime.now(UTC), stats=stats)
            took = time.perf_counter() - t1
            timings.append(took)
            if out.failed_scopes or out.errors:
                print(f"FAILED: {out.failed_scopes} {out.errors[:3]}", file=sys.stderr)
                return 1
            s = stats[0]
            print(
                f"run {run}: {len(out.vms)} VMs + {len(out.facts['templates'])} templates found, "
                f"{len(out.snapshots)} snapshots, {s.pages} pages of {args.page_size}, {took:.2f} s"
            )
        best = min(timings)
        verdict = "OK" if best < GOAL_S else "SLOWER THAN GOAL"
        print(
            f"vSphere discovery of {server.expected_vms} VMs: median {statistics.median(timings):.2f} s, "
            f"best {best:.2f} s [goal < {GOAL_S:.0f} s] {verdict}"
        )
    return 0 if best < GOAL_S else 2


if __name__ == "__main__":
    sys.exit(main())
