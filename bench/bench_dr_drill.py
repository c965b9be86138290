"""Benchmark a 10-VM DR drill, start to cleaned up, on moto (AWS) and on vcsim (vSphere): goal < 60 s each.

    .venv/bin/python bench/bench_dr_drill.py [--runs 3] [--vms 10] [--poll 0.5]

Everything is the real path of ``qlrf dr drill``: the service (scope from an inventory partition,
the embedded Rego ``dr`` decision, the audit log on a temp SQLite file, the journal in a temp
warehouse) and the platform's drill driver through its SDK, against a moto server in a child
process (like a real endpoint) and vcsim (DC0 -> DC1). Each run is a fresh Python process (imports
and connections paid every time, as a user pays them), the platforms interleaved A B A B; the
figures are medians. "drill" is the drill's own start -> cleaned up (what the journal records);
"process" adds the child's imports, seeding and the gate's compile.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_S = 60.0


def child(platform: str, endpoint: str, vms: int, poll: float) -> None:
    """One drill in this (fresh) process; prints one JSON line."""
    from qlrf.dr.authorise import DR_DECISION_PATH
    from qlrf.dr.service import run_drill
    from qlrf.remediation.audit import AuditLog
    from qlrf.remediation.gate import Gate
    from qlrf.warehouse import Warehouse
    from tests.dr.support import drill_plan, write_inventory

    tmp = tempfile.mkdtemp(prefix="qlrf-bench-dr-")
    wh = Warehouse(f"{tmp}/wh")
    if platform == "aws":
        import boto3

        from qlrf.dr.drivers.aws import AwsDrillConfig, AwsDrillDriver
        from tests.dr.support import DR, aws_inventory, seed_aws

        group = f"bench{time.time_ns()}"
        estate = seed_aws(boto3.Session(), endpoint, vms, group=group)
        write_inventory(wh, "aws", aws_inventory(estate, group=group))
        plan = drill_plan("aws", target=DR, scope={"group": group, "max_vms": vms})
        driver = AwsDrillDriver(AwsDrillConfig(endpoint_url=endpoint))
    else:
        from qlrf.dr.drivers.vsphere import VsphereDrillConfig, VsphereDrillDriver
        from qlrf.inventory.connectors.vsphere import VcenterConfig

        host, port = endpoint.rsplit(":", 1)
        vc = VcenterConfig(host=host, port=int(port), user="u", password="p", protocol="https", verify_tls=False)
        rows = vsphere_estate(vc, vms)
        write_inventory(wh, "vsphere", rows)
        plan = drill_plan("vsphere", target="DC1", scope={"site": "syd1", "max_vms": vms})
        driver = VsphereDrillDriver(VsphereDrillConfig(vcenters=[vc]))
    gate = Gate.embedded(decision_path=DR_DECISION_PATH)
    started = time.perf_counter()
    result = run_drill(plan, warehouse=wh, driver=driver, gate=gate, store=None, audit=AuditLog(f"sqlite:///{tmp}/audit.db"),
                       requested_by="bench", as_of=datetime.now(UTC).date(), poll_interval=poll)
    wall = time.perf_counter() - started
    s = result.summary()
    print(json.dumps({"platform": platform, "drill_s": (result.ended_at - result.started_at).total_seconds(), "wall_s": wall,
                      "outcome": result.outcome, "vms": s["vms"], "rto_max_s": s["rto_seconds_max"], "removed": s["removed"],
                      "cleaned_up": s["cleaned_up"]}))


def vsphere_estate(vc, vms: int) -> list[dict]:
    """Snapshot the first ``vms`` DC0 VMs (moved to the standard network once) and list them as inventory."""
    from pyVmomi import vim

    from qlrf.inventory.connectors.vsphere import connect
    from tests.servers.vcsim import _wait_task, retrieve_vms

    si = connect(vc)
    dc0 = next(e for e in si.RetrieveContent().rootFolder.childEntity if isinstance(e, vim.Datacenter) and e.name == "DC0")
    rows = sorted((r for r in retrieve_vms(si, ["name", "config.instanceUuid"]) if r["name"].startswith("DC0_")),
                  key=lambda r: r["name"])[:vms]
    net = next(n for n in dc0.network if n.name == "VM Network")
    for r in rows:
        vm = r["obj"]
        changes = []
        for dev in vm.config.hardware.device:
            if isinstance(dev, vim.vm.device.VirtualEthernetCard) and not isinstance(
                    dev.backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo):
                dev.backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=net.name, network=net)
                changes.append(vim.vm.device.VirtualDeviceSpec(operation="edit", device=dev))
        if changes:
            _wait_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)))
        _wait_task(vm.CreateSnapshot_Task(name=f"bench-{time.time_ns()}", description="", memory=False, quiesce=False))
    return [{"asset_id": r["config.instanceUuid"], "account": vc.label, "region": "DC0", "name": r["name"], "site": "syd1"}
            for r in rows]


def run_child(platform: str, endpoint: str, args: argparse.Namespace, env: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", platform, "--endpoint", endpoint, "--vms", str(args.vms),
                           "--poll", str(args.poll)], env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"{platform} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--vms", type=int, default=10)
    parser.add_argument("--poll", type=float, default=0.5)
    parser.add_argument("--child")
    parser.add_argument("--endpoint")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.endpoint, args.vms, args.poll)
        return 0

    from tests.servers.moto_server import MotoProcess, loopback_env
    from tests.servers.vcsim import start_vcsim

    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    results: dict[str, list[dict]] = {"aws": [], "vsphere": []}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, MotoProcess() as moto, start_vcsim(vms=2 * args.vms, datacenters=2) as vcsim:
        env = {**loopback_env(moto.url, tmp), "PYTHONPATH": str(ROOT)}
        for _ in range(args.runs):  # interleaved A B A B
            results["aws"].append(run_child("aws", moto.url, args, env))
            results["vsphere"].append(run_child("vsphere", f"{vcsim.host}:{vcsim.port}", args, env))
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores (before: {load_before[0]:.2f}); "
          f"shared, busy machine: figures are indicative")
    ok = True
    for platform, runs in results.items():
        drill = statistics.median(r["drill_s"] for r in runs)
        outcomes = sorted({r["outcome"] for r in runs})
        clean = all(r["cleaned_up"] for r in runs)
        rto = statistics.median(r["rto_max_s"] for r in runs)
        met = drill < GOAL_S and outcomes == ["passed"] and clean and all(r["vms"] == args.vms for r in runs)
        ok &= met
        each = ", ".join(f"{r['drill_s']:.2f}" for r in runs)
        where = "moto (child process)" if platform == "aws" else "vcsim DC0 -> DC1"
        print(f"{platform:<8} {runs[-1]['vms']}-VM drill on {where}, start to cleaned up: median {drill:.2f} s over {len(runs)} fresh "
              f"processes (runs {each}); max RTO median {rto:.2f} s; "
              f"outcomes {outcomes}; cleaned up {clean}; removed {runs[-1]['removed']} resources per run; "
              f"goal < {GOAL_S:.0f} s: {'met' if met else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
