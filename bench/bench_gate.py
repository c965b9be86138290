"""Benchmark the Rego action gate: embedded decisions per second (goal >= 5,000/s) and remote calls.

    .venv/bin/python bench/bench_gate.py [--n 6000] [--rounds 3] [--workers 2]

Embedded: the policies compiled once into a regopy bundle, one `decide()` per request over a mix of
requests (allowed canaries, waves waiting for approval, denials); then `decide_many()` with one
interpreter per worker thread (rego-cpp evaluates outside the GIL). Remote: `decide()` against the
loopback OPA fake (tests/fakes/opa_fake.py, HTTP/1.1 keep-alive), i.e. the HTTP round trip plus the
fake's own regopy evaluation. Rates are the best of `--rounds`; the load average is printed because
this machine is shared and its other work moves the numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qlrf.remediation.gate import Gate  # noqa: E402

GOAL = 5000
HASH = "sha256:" + "0f" * 32


def requests(n: int) -> list[dict]:
    envs = ("prod", "staging", "dev")
    modes = {"prod": "canary_only", "staging": "full_auto", "dev": "full_auto"}
    risks = ("low", "medium", "low", "high")
    out = []
    for i in range(n):
        env = envs[i % 3]
        wave = i % 5
        out.append(
            {
                "action": "execute_wave" if i % 7 else "plan",
                "environment": env,
                "autonomy_mode": modes[env],
                "risk_level": risks[i % 4],
                "plan_hash": HASH,
                "targets": 1 + i % 40,
                "wave": wave,
                "canary": wave == 0,
                "drift_delta": round((i % 60) / 4, 2),
                "maintenance_window_open": i % 11 != 0,
                "requested_by": "sensor:drift_breach",
            }
        )
    return out


def rate(fn, items: list, rounds: int) -> float:
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        fn(items)
        best = max(best, len(items) / (time.perf_counter() - started))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6000)
    parser.add_argument("--remote-n", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)

    items = requests(args.n)
    started = time.perf_counter()
    gate = Gate.embedded()
    compile_ms = (time.perf_counter() - started) * 1e3
    decisions = [gate.decide(r) for r in items[:500]]
    mix = (
        sum(d.allow for d in decisions),
        sum(d.requires_approval and not d.allow and not d.reasons for d in decisions),
        sum(bool(d.reasons) for d in decisions),
    )
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"embedded: compile {compile_ms:.0f} ms; request mix of 500: {mix[0]} allowed, {mix[1]} awaiting approval, {mix[2]} denied")

    single = rate(lambda xs: [gate.decide(r) for r in xs], items, args.rounds)
    print(f"embedded decide(), 1 thread:          {single:8.0f} decisions/s  ({1e6 / single:6.1f} us each)")
    pooled_gate = Gate.embedded(workers=args.workers)
    pooled = rate(pooled_gate.decide_many, items, args.rounds)
    print(f"embedded decide_many(), {args.workers} workers:   {pooled:8.0f} decisions/s  ({1e6 / pooled:6.1f} us each)")
    best = max(single, pooled)
    print(f"goal >= {GOAL}/s: {'met' if best >= GOAL else 'NOT met'} (best {best:.0f}/s)")

    sys.path.insert(0, str(ROOT))
    from tests.fakes.opa_fake import start_opa_fake

    with start_opa_fake() as fake:
        remote = Gate.remote(fake.url, timeout=5)
        remote_items = items[: args.remote_n]
        assert [d.allow for d in (remote.decide(r) for r in remote_items[:200])] == [d.allow for d in (gate.decide(r) for r in remote_items[:200])]
        per_call = rate(lambda xs: [remote.decide(r) for r in xs], remote_items, args.rounds)
        print(f"remote decide() via OPA REST (fake):  {per_call:8.0f} calls/s      ({1e3 / per_call:6.2f} ms per call)")
        remote.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
