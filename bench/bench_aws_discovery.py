"""AWS discovery vs Cloud Custodian against one moto server (issue 3, "Numbers").

One moto server (its own process) holds 2,000 instances in 4 regions, their AMIs, one Auto Scaling
group per region (launch template) and EBS snapshots (every attached volume has one, every third a
newer second one). Then, alternating for --rounds rounds:

- ours: `qlrf.inventory.connectors.aws.discover` over the 4 regions, in this (warm) process as the Dagster
  code server runs it: instances + AMIs + scaling groups with launch-template resolution + the
  newest snapshot per volume;
- ours, fresh process: the same in a new interpreter (imports included), for a like-for-like look;
- custodian: `custodian run --cache-period 0 -s <tmp> -r r1..r4 policy.yml`, one `aws.ec2` policy
  with an `image-age` filter (instances + their AMIs), through AWS_ENDPOINT_URL.

Prints each time, VM counts and the ratio of medians (goal: ours <= 0.8x custodian).

    .venv/bin/python bench/bench_aws_discovery.py [--instances 2000] [--rounds 3]
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
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from qlrf.inventory.connectors.aws import AwsConfig, discover  # noqa: E402
from qlrf.inventory.tags import TagMapping  # noqa: E402
from tests.servers.moto_server import MotoProcess, loopback_env, seed_region  # noqa: E402

REGIONS = ["eu-west-1", "eu-west-2", "us-east-1", "us-west-2"]
ASG_SIZE = 5

POLICY = """\
policies:
  - name: ec2-image-age
    resource: aws.ec2
    filters:
      - type: image-age
        days: 0
        op: ge
"""

FRESH = """\
import sys, time
t0 = time.perf_counter()
from datetime import UTC, datetime
from qlrf.inventory.connectors.aws import AwsConfig, discover
from qlrf.inventory.tags import TagMapping
out = discover(AwsConfig(regions=sys.argv[1].split(",")), mapping=TagMapping(), discovered_at=datetime.now(UTC))
print(len(out.vms), len(out.failed_scopes), time.perf_counter() - t0)
"""


def seed(instances: int) -> dict:
    per_region = instances // len(REGIONS) - ASG_SIZE
    started = time.perf_counter()
    with ThreadPoolExecutor(len(REGIONS)) as pool:
        seeded = list(
            pool.map(
                lambda r: seed_region(
                    boto3.Session(),
                    r,
                    instances=per_region,
                    asg_size=ASG_SIZE,
                    unique_names=False,
                    snapshot_every=1,
                    second_snapshot_every=3,
                ),
                REGIONS,
            )
        )
    return {
        "seconds": time.perf_counter() - started,
        "instances": sum(len(s.instance_ids) + len(s.asg_members) for s in seeded),
        "snapshots": sum(len(s.newest_snapshot) for s in seeded),
        "volumes": sum(len(s.volume_owner) for s in seeded),
        "seeded": seeded,
    }


def server_cpu(pid: int) -> float:
    """CPU seconds the moto server process has used so far (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_ours() -> tuple[float, object]:
    started = time.perf_counter()
    out = discover(AwsConfig(regions=REGIONS), mapping=TagMapping(), discovered_at=datetime.now(UTC))
    return time.perf_counter() - started, out


def run_ours_fresh(env: dict) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", FRESH, ",".join(REGIONS)], env=env, capture_output=True, text=True, cwd=ROOT
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"fresh-process discovery failed:\n{proc.stderr[-2000:]}")
    vms, failed, _ = proc.stdout.split()
    if int(failed):
        raise RuntimeError(f"fresh-process discovery had {failed} failed scopes")
    return elapsed, int(vms)


def run_custodian(env: dict, workdir: Path) -> tuple[float, int]:
    policy = workdir / "policy.yml"
    policy.write_text(POLICY)
    out = Path(tempfile.mkdtemp(dir=workdir, prefix="c7n-out-"))
    custodian = ROOT / ".venv" / "bin" / "custodian"
    cmd = [str(custodian), "run", "--cache-period", "0", "-s", str(out)]
    for region in REGIONS:
        cmd += ["-r", region]
    cmd.append(str(policy))
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"custodian failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    count = 0
    for resources in out.rglob("resources.json"):
        count += len(json.loads(resources.read_text()))
    return elapsed, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    with MotoProcess() as moto, tempfile.TemporaryDirectory(prefix="qlrf-bench-aws-") as tmp:
        env = loopback_env(moto.url, tmp)
        env["PYTHONPATH"] = str(ROOT)
        os.environ.update(env)
        estate = seed(args.instances)
        print(
            f"moto {moto.url} (own process): seeded {estate['instances']} instances, {estate['volumes']} volumes, "
            f"{estate['snapshots']} volumes with snapshots, {len(REGIONS)} AMI sets + ASGs "
            f"in {len(REGIONS)} regions in {estate['seconds']:.1f} s"
        )
        ours: list[float] = []
        fresh: list[float] = []
        c7n: list[float] = []
        last = None
        pid = moto.proc.pid
        for round_no in range(1, args.rounds + 1):
            cpu = server_cpu(pid)
            t_ours, last = run_ours()
            cpu_ours, cpu = server_cpu(pid) - cpu, server_cpu(pid)
            ours.append(t_ours)
            t_fresh, fresh_vms = run_ours_fresh(env)
            cpu = server_cpu(pid)
            fresh.append(t_fresh)
            t_c7n, c7n_vms = run_custodian(env, Path(tmp))
            cpu_c7n = server_cpu(pid) - cpu
            c7n.append(t_c7n)
            print(
                f"round {round_no}: ours {t_ours:.2f} s ({len(last.vms)} VMs, moto busy {cpu_ours:.2f} s) | "
                f"ours fresh process {t_fresh:.2f} s ({fresh_vms} VMs) | "
                f"custodian {t_c7n:.2f} s ({c7n_vms} VMs, moto busy {cpu_c7n:.2f} s)"
            )
        assert last is not None
        facts = last.facts
        m_ours, m_fresh, m_c7n = statistics.median(ours), statistics.median(fresh), statistics.median(c7n)
        print(
            f"ours fetched: {len(last.vms)} VMs, {len(facts['images'])} AMI facts, "
            f"{len(facts['scaling_groups'])} scaling groups (launch templates resolved), "
            f"{len(last.snapshots)} newest snapshots, {len(last.failed_scopes)} failed scopes"
        )
        print(f"custodian fetched: {c7n_vms} VMs matching an image-age filter (instances + AMIs)")
        print(f"median ours (in-process)      {m_ours:.2f} s")
        print(f"median ours (fresh process)   {m_fresh:.2f} s")
        print(f"median custodian              {m_c7n:.2f} s")
        print(
            f"ratio ours/custodian: {m_ours / m_c7n:.2f}x in-process, {m_fresh / m_c7n:.2f}x fresh process (goal <= 0.8x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
