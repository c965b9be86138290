"""Benchmark: partition write and read times, local disk vs an S3 warehouse on a loopback moto server.

Issue 16 item 3. What the atomic replacement on S3 costs: every write is a staging upload, a full
read-back (size, SHA-256, Parquet row count), a server-side copy onto the final key and a delete
(qlrf/warehouse_s3.py). The bench times, per partition size:

- local write   Warehouse.write on local disk (temporary file + rename)
- s3 write      Warehouse.write on s3:// (staging upload + verify + copy + delete)
- s3 plain PUT  the same file uploaded once straight to a key: the floor without the atomicity
- local read    Warehouse.read (whole table)
- s3 read       Warehouse.read on s3://
- s3 source     Warehouse.source on s3:// from a cold cache (the local copy DuckDB scans is fetched)

Runs are interleaved (local, s3, plain, reads, in turn, `--repeat` times) so machine load drifts hit
every column alike; medians are printed, with the load average. moto runs in a child process
(MotoProcess), so its CPU does not share this process's GIL. moto keeps objects in memory and answers
over loopback: the figures measure the client and protocol work, not a real network's latency.

    .venv/bin/python bench/bench_s3_warehouse.py                  # 10k and 1M rows, 5 repeats (< 1 min)
    .venv/bin/python bench/bench_s3_warehouse.py --rows 1000000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import boto3  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.fs as pafs  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from qlrf.warehouse import Warehouse, _cache_dir  # noqa: E402
from qlrf.warehouse_s3 import S3Options  # noqa: E402
from tests.servers.moto_server import FAKE_CREDENTIALS, MotoProcess  # noqa: E402

BUCKET = "qlrf-bench"
DAY = "2026-11-20"


def fleet_table(rows: int) -> pa.Table:
    """Inventory-shaped columns (random UUID-like ids, sites, images, scores), deterministic (seeded):
    ids and scores do not compress away, so the file size is that of a real partition."""
    rng = random.Random(7)
    ids = pa.array([f"{rng.getrandbits(128):032x}" for _ in range(rows)])
    return pa.table({
        "asset_id": ids,
        "site": pa.array([f"site-{i % 37}" for i in range(rows)]),
        "image_version": pa.array([f"2026.{i % 12}.{i % 5}" for i in range(rows)]),
        "cpu": pa.array([(i * 7) % 64 for i in range(rows)], pa.int32()),
        "drift_score": pa.array([rng.random() * 100 for _ in range(rows)], pa.float64()),
    })


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cold_source(wh: Warehouse) -> None:
    pq.read_metadata(wh.source("inventory", DAY, "aws"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)

    scratch = tempfile.TemporaryDirectory(prefix="qlrf-bench-s3-")
    os.environ.update({**FAKE_CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true",
                       "AWS_CONFIG_FILE": f"{scratch.name}/none", "AWS_SHARED_CREDENTIALS_FILE": f"{scratch.name}/none"})
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        os.environ.pop(key, None)
    with MotoProcess() as moto:
        boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        options = S3Options(endpoint_url=moto.url, region="us-east-1")
        local = Warehouse(f"{scratch.name}/wh")
        s3 = Warehouse(f"s3://{BUCKET}/wh", s3=options)
        print(f"load before: {os.getloadavg()[0]:.2f} (1-min average), {os.cpu_count()} cores; moto {moto.url} (child process)")
        print(f"{'rows':>9} {'file MiB':>8} | {'local write':>11} {'s3 write':>9} {'s3 plain PUT':>12} | "
              f"{'local read':>10} {'s3 read':>8} {'s3 source':>9}   (median s of {args.repeat})")
        for rows in args.rows:
            data = fleet_table(rows)
            local.write("inventory", data, DAY, "aws")
            plain_src = local.file("inventory", DAY, "aws")
            size = os.path.getsize(plain_src) / 2**20
            times: dict[str, list[float]] = {k: [] for k in ("lw", "sw", "sp", "lr", "sr", "ss")}
            for _ in range(args.repeat):
                times["lw"].append(timed(partial(local.write, "inventory", data, DAY, "aws")))
                times["sw"].append(timed(partial(s3.write, "inventory", data, DAY, "aws")))
                times["sp"].append(timed(partial(pafs.copy_files, plain_src, f"{BUCKET}/plain/part.parquet",
                                                 source_filesystem=pafs.LocalFileSystem(), destination_filesystem=s3.fs)))
                times["lr"].append(timed(lambda: local.read("inventory", DAY, "aws")))
                times["sr"].append(timed(lambda: s3.read("inventory", DAY, "aws")))
                for cached in Path(_cache_dir()).iterdir():  # cold: the copy is fetched, as after a new write
                    cached.unlink()
                times["ss"].append(timed(partial(cold_source, s3)))
            assert s3.read("inventory", DAY, "aws").num_rows == rows
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"{rows:>9,} {size:>8.2f} | {med['lw']:>11.3f} {med['sw']:>9.3f} {med['sp']:>12.3f} | "
                  f"{med['lr']:>10.3f} {med['sr']:>8.3f} {med['ss']:>9.3f}")
        print(f"load after: {os.getloadavg()[0]:.2f} (1-min average)")
    scratch.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
