"""Event bridge figures: relay throughput to JetStream, change -> broker latency, and the fault run.

    .venv/bin/python bench/bench_events.py [--events 20000] [--runs 3] [--outage 30] [--fault-events 10000]

* throughput: each run is a fresh process that fills a SQLite outbox (not timed) and times
  ``Relay.drain_once`` to a fresh stream on the machine's JetStream (127.0.0.1:4222); median of runs.
* latency: a relay thread (0.1 s passes) while events are written one by one every 20 ms; latency is
  ``delivered_at - created_at`` per event (same clock); p50/p95. A relay process, not ``make serve``.
* fault run: a private ``nats-server -js`` on a free port (the shared one is not ours to stop) is
  stopped for ``--outage`` seconds while ``--fault-events`` events are produced and the relay keeps
  trying; the server is restarted on the same store, the relay drains, then a relay that "lost its
  marks" re-sends everything (JetStream drops the copies by ``Nats-Msg-Id``), and a de-duplicating
  consumer reads the stream: delivered, unique, lost.

The machine is shared and busy: the load average is printed with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load() -> str:
    return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])


def events(n: int, tag: str, start: int = 0):
    from qlrf.events.contract import build

    t0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    return [build("drift.detected", key=f"{tag}|{i}", source="bench", subject=f"site/s{i % 13}/prod/aws", time=t0,
                  data={"date": "2026-11-27", "platform": "aws", "site": f"s{i % 13}", "environment": "prod",
                        "drift_score": 11.0, "threshold": 10.0, "vms": i})
            for i in range(start, start + n)]


def one_throughput(n: int) -> None:
    """Child process: print the relay's events/s for `n` events."""
    from qlrf.events.outbox import Outbox
    from qlrf.events.relay import Relay
    from qlrf.events.transports.nats import NatsTransport

    tag = uuid.uuid4().hex[:10]
    transport = NatsTransport(stream=f"BENCH_{tag}", prefix=f"bench{tag}.events")
    with tempfile.TemporaryDirectory() as tmp:
        outbox = Outbox(f"sqlite:///{tmp}/ob.db")
        outbox.write(events(n, tag))
        started = time.perf_counter()
        result = Relay(outbox, transport, batch=5000).drain_once()
        elapsed = time.perf_counter() - started
        transport.delete_stream()
    assert result.delivered == n and not result.errors, result
    print(json.dumps({"events": n, "seconds": elapsed, "rate": n / elapsed}))


def latency(count: int = 200) -> tuple[float, float]:
    from qlrf.events.outbox import Outbox
    from qlrf.events.relay import Relay
    from qlrf.events.transports.nats import NatsTransport

    tag = uuid.uuid4().hex[:10]
    transport = NatsTransport(stream=f"BENCHL_{tag}", prefix=f"benchl{tag}.events")
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        outbox = Outbox(f"sqlite:///{tmp}/ob.db")
        relay = Relay(outbox, transport)
        thread = threading.Thread(target=relay.run, kwargs={"interval": 0.1, "stop": stop.is_set})
        thread.start()
        for event in events(count, tag):
            outbox.write([event])
            time.sleep(0.02)
        deadline = time.time() + 30
        while outbox.status()["pending"] and time.time() < deadline:
            time.sleep(0.1)
        stop.set()
        thread.join()
        rows = outbox.since(datetime(2000, 1, 1, tzinfo=UTC))
        transport.delete_stream()
    lat = sorted((r.delivered_at - r.created_at).total_seconds() for r in rows if r.delivered_at)
    assert len(lat) == count, f"{count - len(lat)} not delivered"
    return statistics.median(lat), lat[int(0.95 * (len(lat) - 1))]


def latency_under_serve(count: int = 200, warmup: float = 20.0) -> tuple[float, float]:
    """Change -> broker latency with the relay `make serve` starts, beside the Dagster UI, daemon, the
    dashboard and the API it starts too (a private QLRF_HOME, free ports, a private stream)."""
    from qlrf.events.outbox import Outbox
    from qlrf.events.transports.nats import NatsTransport

    tag = uuid.uuid4().hex[:10]
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "QLRF_HOME": tmp, "QLRF_EVENTS_STREAM": f"BENCHS_{tag}", "QLRF_EVENTS_PREFIX": f"benchs{tag}.events",
               "QLRF_DAGSTER_PORT": str(free_port()), "QLRF_DASHBOARD_PORT": str(free_port()), "QLRF_API_PORT": str(free_port())}
        serve = [sys.executable, str(ROOT / "scripts" / "serve.py")]
        subprocess.run([*serve, "start"], env=env, cwd=ROOT, check=True, capture_output=True)
        try:
            time.sleep(warmup)  # the services start up (and keep the machine busy, as they would)
            os.environ["QLRF_HOME"] = tmp
            outbox = Outbox()
            for event in events(count, tag):
                outbox.write([event])
                time.sleep(0.02)
            deadline = time.time() + 60
            while outbox.status()["pending"] and time.time() < deadline:
                time.sleep(0.1)
            rows = outbox.since(datetime(2000, 1, 1, tzinfo=UTC))
        finally:
            subprocess.run([*serve, "stop"], env=env, cwd=ROOT, capture_output=True)
            NatsTransport(stream=f"BENCHS_{tag}", prefix=f"benchs{tag}.events").delete_stream()
    lat = sorted((r.delivered_at - r.created_at).total_seconds() for r in rows if r.delivered_at)
    if len(lat) != count:
        raise SystemExit(f"under make serve: {count - len(lat)} of {count} events not delivered within 60 s")
    return statistics.median(lat), lat[int(0.95 * (len(lat) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nats(port: int, store: str) -> subprocess.Popen:
    proc = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("nats-server did not start")


def fault_run(n: int, outage: float) -> dict:
    from qlrf.events.outbox import Outbox
    from qlrf.events.relay import Relay
    from qlrf.events.transports.nats import NatsTransport

    if shutil.which("nats-server") is None:
        raise SystemExit("fault run needs nats-server (apt-get install nats-server)")
    port, store = free_port(), tempfile.mkdtemp(prefix="bench-nats-")
    transport = NatsTransport(url=f"nats://127.0.0.1:{port}", stream="FAULT", prefix="fault.events", connect_timeout=0.5)
    server = start_nats(port, store)
    with tempfile.TemporaryDirectory() as tmp:
        outbox = Outbox(f"sqlite:///{tmp}/ob.db")
        relay = Relay(outbox, transport, batch=2000)
        outbox.write(events(100, "warm"))  # the stream exists and has traffic before the outage
        relay.drain_once()
        server.terminate()
        server.wait(10)
        stopped_at = time.monotonic()
        failed_passes, produced, per_step, last_try = 0, 0, max(1, n // int(outage * 10)), 0.0
        while time.monotonic() - stopped_at < outage:  # produce during the outage; the relay keeps trying
            if produced < n:
                batch = min(per_step, n - produced)
                outbox.write(events(batch, "fault", start=produced))
                produced += batch
            if time.monotonic() - last_try >= 1.0:  # the relay's pass, once a second
                last_try = time.monotonic()
                failed_passes += bool(relay.drain_once().errors)
            time.sleep(0.1)
        if produced < n:
            outbox.write(events(n - produced, "fault", start=produced))
            produced = n
        waiting = outbox.status()["pending"]
        server = start_nats(port, store)
        restarted = time.monotonic()
        delivered = 0
        while outbox.status()["pending"]:
            delivered += relay.drain_once().delivered
            if time.monotonic() - restarted > 120:
                break
        drain_seconds = time.monotonic() - restarted
        rows = outbox.since(datetime(2000, 1, 1, tzinfo=UTC))
        resent = transport.publish([(r.seq, r.event) for r in rows])  # a relay that lost its marks
        seen = transport.fetch(0, n + 1000, wait=1.0)
        server.terminate()
        server.wait(10)
    shutil.rmtree(store, ignore_errors=True)
    ids = [json.loads(body)["id"] for _, body in seen]
    fault_ids = {e.id for e in events(n, "fault")}
    return {"produced_during_outage": produced, "waiting_at_restart": waiting, "failed_relay_passes": failed_passes,
            "delivered_after_restart": delivered, "drain_seconds": drain_seconds, "resent": len(resent),
            "stream_messages": len(ids), "unique": len(set(ids)), "fault_events_in_stream": len(fault_ids & set(ids)),
            "lost": len(fault_ids - set(ids)), "duplicates_in_stream": len(ids) - len(set(ids))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--outage", type=float, default=30.0)
    parser.add_argument("--fault-events", type=int, default=10_000)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--skip-fault", action="store_true")
    parser.add_argument("--serve-latency", action="store_true",
                        help="only the change -> broker latency with everything `make serve` starts running")
    args = parser.parse_args()
    if args.child:
        one_throughput(args.child)
        return 0

    print(f"machine: {os.cpu_count()} cores, shared with other engineers; {load()}")
    if args.serve_latency:
        p50, p95 = latency_under_serve()
        print(f"change -> broker latency under make serve (its relay, 0.25 s passes, beside the Dagster UI, daemon, "
              f"dashboard and API; 200 events): p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (goal p95 < 1 s); {load()}")
        return 0
    rates = []
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, __file__, "--child", str(args.events)], capture_output=True, text=True,
                             check=True, cwd=ROOT)
        rates.append(json.loads(out.stdout.strip().splitlines()[-1])["rate"])
    print(f"relay throughput to JetStream: median {statistics.median(rates):,.0f} events/s over {args.runs} fresh "
          f"processes x {args.events:,} events (runs: {', '.join(f'{r:,.0f}' for r in rates)}; goal >= 5,000); {load()}")
    p50, p95 = latency()
    print(f"change -> broker latency (relay process, 0.1 s passes, 200 events): p50 {p50 * 1000:.0f} ms, "
          f"p95 {p95 * 1000:.0f} ms (goal p95 < 1 s); {load()}")
    if not args.skip_fault:
        result = fault_run(args.fault_events, args.outage)
        print(f"fault run: private nats-server stopped {args.outage:.0f} s; {result['produced_during_outage']:,} events "
              f"produced during the outage ({result['waiting_at_restart']:,} waiting at restart, "
              f"{result['failed_relay_passes']} failed relay passes); after restart delivered "
              f"{result['delivered_after_restart']:,} in {result['drain_seconds']:.1f} s; re-sent all {result['resent']:,} "
              f"(lost marks): stream holds {result['stream_messages']:,} messages, {result['unique']:,} unique, "
              f"{result['fault_events_in_stream']:,} of the outage's events, lost {result['lost']}, "
              f"duplicates {result['duplicates_in_stream']}; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
