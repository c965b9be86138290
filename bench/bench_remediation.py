"""Benchmark the remediation executor on moto: a three-wave plan over a 12-instance ASG (goal < 60 s),
and the same plan with one canary instance made unhealthy, which must roll back and stop.

    .venv/bin/python bench/bench_remediation.py [--thread] [--poll 1.0] [--health-timeout 5] [--max-unavailable 2]

Everything goes through the real pieces: the AWS driver (boto3) against a moto server (a child
process by default, like a real endpoint; ``--thread`` runs it in this process), the embedded Rego
gate (policy/*.rego) deciding every wave and the rollback, and the hash-chained audit log (a temp
SQLite file). The ASG is on launch-template version 1 (old AMI); the plan moves it to a new version
with the golden AMI: canary 10 % (2), then 45 % (6), then the rest (4), ``max_unavailable``
at a time. The driver and the health gate poll every ``--poll`` seconds (moto refills the group
synchronously, so the first look usually passes). The rollback run stops one fresh canary
instance; the health gate then waits its ``--health-timeout`` before it fails, so that run's time is
mostly that timeout.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402

from qlrf.remediation.drivers.aws import AwsDriver, AwsDriverConfig  # noqa: E402
from qlrf.remediation.executor import execute_plan  # noqa: E402
from qlrf.remediation.gate import Gate  # noqa: E402
from tests.remediation.support import (  # noqa: E402
    NOW,
    StopOneCanary,
    asg_images,
    asg_plan,
    audit_log,
    seed_asg,
    trail,
)
from tests.servers.moto_server import MotoProcess, loopback_overrides, start_moto_thread  # noqa: E402

GOAL_S = 60.0


@contextlib.contextmanager
def moto(thread: bool):
    if thread:
        with start_moto_thread(default_amis=False) as url:
            yield url
    else:
        os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"  # inherited by the child
        with MotoProcess() as server:
            yield server.url


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--thread", action="store_true", help="moto in this process instead of a child process")
    ap.add_argument("--poll", type=float, default=1.0, help="seconds between driver / health-gate looks")
    ap.add_argument("--health-timeout", type=int, default=5, help="the rollback plan's health-gate timeout (s)")
    ap.add_argument("--max-unavailable", type=int, default=2)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="qlrf-bench-remediation-")
    with moto(args.thread) as url:
        os.environ.update(loopback_overrides(url, tmp))
        session = boto3.Session()
        gate = Gate.embedded()
        say = lambda _msg: None  # noqa: E731
        print(f"moto {'thread' if args.thread else 'process'} at {url}; poll {args.poll}s, "
              f"max_unavailable {args.max_unavailable}")

        # 1. the three-wave plan
        estate = seed_asg(session, url, name="web", size=12)
        plan = asg_plan(estate, max_unavailable=args.max_unavailable, timeout_seconds=60)
        audit = audit_log(f"sqlite:///{tmp}/audit-success.db")
        driver = AwsDriver(AwsDriverConfig(endpoint_url=url, poll_interval=args.poll, replace_timeout=120))
        t0 = time.perf_counter()
        result = execute_plan(plan, driver=driver, gate=gate, audit=audit, requested_by="sensor:drift_findings_sensor",
                              fleet_size=200, now=NOW, poll_interval=args.poll, log=say)
        elapsed = time.perf_counter() - t0
        version, images = asg_images(session, url, estate)
        on_golden = sum(1 for image in images.values() if image == estate.golden_ami)
        print(f"three-wave plan, 12-instance ASG: {elapsed:.2f} s ({'OK' if elapsed < GOAL_S else 'OVER'} goal "
              f"< {GOAL_S:.0f} s) -> {result.state}; launch template version {version}; "
              f"{on_golden}/{len(images)} instances on the golden AMI")
        for w in result.waves:
            group = w.details["groups"][estate.asg]
            print(f"  wave {w.index} {w.name:<8} {len(group['replaced'])} replaced in {group['chunks']} chunk(s), "
                  f"{w.health.healthy_count}/{w.health.total} healthy, {w.seconds:.2f} s")
        ok = result.state == "succeeded" and on_golden == 12 and elapsed < GOAL_S

        # 2. the same plan with an unhealthy canary
        estate = seed_asg(session, url, name="api", size=12)
        plan = asg_plan(estate, max_unavailable=args.max_unavailable, timeout_seconds=args.health_timeout)
        audit = audit_log(f"sqlite:///{tmp}/audit-rollback.db")
        sabotage = StopOneCanary(
            AwsDriver(AwsDriverConfig(endpoint_url=url, poll_interval=args.poll, replace_timeout=120)), estate.region, url
        )
        t0 = time.perf_counter()
        result = execute_plan(plan, driver=sabotage, gate=gate, audit=audit, requested_by="sensor:drift_findings_sensor",
                              fleet_size=200, now=NOW, poll_interval=args.poll, log=say)
        elapsed = time.perf_counter() - t0
        version, images = asg_images(session, url, estate)
        on_old = sum(1 for image in images.values() if image == estate.old_ami)
        print(f"unhealthy canary ({sabotage.stopped} stopped), health timeout {args.health_timeout} s: {elapsed:.2f} s "
              f"-> {result.state}; waves run {[w.index for w in result.waves]}; launch template version {version}; "
              f"{on_old}/{len(images)} instances on the previous AMI")
        print(f"  reason: {result.reason}")
        verified = audit.verify()
        print(f"audit trail of the rollback run ({len(audit.records())} records, chain "
              f"{'verified' if verified.ok else 'BROKEN'}):")
        for line in trail(audit):
            print("  " + line)
        ok &= result.state == "rolled_back" and version == "1" and on_old == 12 and verified.ok
        gate.close()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
