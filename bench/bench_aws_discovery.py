"""AWS discovery vs Cloud Custodian against one moto server (issue 3, "Numbers").

One moto server (its own process) holds 2,000 instances in 4 regions, their AMIs, one Auto Scaling
group per region (launch template) and EBS snapshots (every attached volume has one, every third a
newer second one). Then, interleaved A B A B A B (bench/sidebyside.py), each a fresh process:

- ours: `qlrf discover --platform aws` over the 4 regions (QLRF_AWS_REGIONS), imports included:
  instances + AMIs + scaling groups with launch-template resolution + the newest snapshot per volume;
- custodian: `custodian run --cache-period 0 -s <tmp> -r r1..r4 policy.yml`, one `aws.ec2` policy
  with an `image-age` filter (instances + their AMIs), through AWS_ENDPOINT_URL.

Then ours once more in this (warm) process, as the Dagster code server runs it, for reference.
Prints medians, min-max, the moto server's busy time per side and the ratio of medians
(goal, issue 18: ours <= 0.8x custodian).

    .venv/bin/python bench/bench_aws_discovery.py [--instances 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from bench.sidebyside import PYTHON, Side, goal, interleave, load_line, ratio, run_once  # noqa: E402
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


def custodian_count(out: Path) -> int:
    return sum(len(json.loads(f.read_text())) for f in out.rglob("resources.json"))


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
        ours_env = {**env, "QLRF_AWS_REGIONS": ",".join(REGIONS), "QLRF_HOME": str(Path(tmp) / "home")}
        workdir = Path(tmp)
        policy = workdir / "policy.yml"
        policy.write_text(POLICY)
        c7n_out = workdir / "c7n-out"
        cmd = [str(ROOT / ".venv" / "bin" / "custodian"), "run", "--cache-period", "0", "-s", str(c7n_out)]
        for region in REGIONS:
            cmd += ["-r", region]
        cmd.append(str(policy))

        def ours_found(text: str) -> None:
            if f"aws: {estate['instances']} VMs" not in text or " 0 failed scope(s)" not in text:
                raise RuntimeError(f"qlrf discover did not find every instance:\n{text[-2000:]}")

        def c7n_found(_text: str) -> None:
            if custodian_count(c7n_out) != estate["instances"]:
                raise RuntimeError(f"custodian found {custodian_count(c7n_out)} instances")

        pid = moto.proc.pid
        busy: dict[str, list[float]] = {"ours": [], "custodian": []}

        def runner(side: Side):
            cpu = server_cpu(pid)
            sample = run_once(side)
            busy["ours" if side.name.startswith("ours") else "custodian"].append(server_cpu(pid) - cpu)
            return sample

        ours = Side("ours (qlrf discover)", [PYTHON, "-m", "qlrf.cli", "discover", "--platform", "aws"],
                    env=ours_env, check=ours_found)
        c7n = Side("custodian run", cmd, env=env, check=c7n_found)
        print(f"AWS discovery, {len(REGIONS)} regions, fresh processes, interleaved ({load_line()})")
        result = interleave([ours, c7n], rounds=args.rounds, runner=runner)
        a, b = result[ours.name], result[c7n.name]
        fetched = a.samples[-1].stdout.strip().splitlines()
        print(a.line(22) + f"  moto busy {statistics.median(busy['ours']):.2f} s")
        print(b.line(22) + f"  moto busy {statistics.median(busy['custodian']):.2f} s")
        print("ours fetched: " + "; ".join(line.strip() for line in fetched[:5]))
        print(f"custodian fetched: {custodian_count(c7n_out)} instances matching an image-age filter (instances + AMIs)")
        r = ratio(a, b)
        print(f"ratio ours/custodian {r:.2f}x (medians) " + goal("[goal <= 0.8x]", r <= 0.8))
        warm, last = run_ours()
        print(f"ours in a warm process (as the code server runs it): {warm:.2f} s, {len(last.vms)} VMs, "
              f"{len(last.facts['images'])} AMI facts, {len(last.facts['scaling_groups'])} scaling groups, "
              f"{len(last.snapshots)} newest snapshots, {len(last.failed_scopes)} failed scopes")
        print(f"after: {load_line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
