"""Benchmark: one drift_findings_sensor tick over a 1,000,000-VM drift partition (goal < 5 s).

Builds a synthetic one-million-VM aws partition (bench/fleet_gen.py) and scores its drift with the
stage code the asset runs (qlrf.scoring.stages.run_drift), neither timed. Then records the drift_scores
materialisation in an ephemeral Dagster instance and times the sensor's whole evaluation, exactly
as the daemon calls it (build_sensor_context + evaluate_tick): fetching the event, DuckDB over the
Parquet partition for the findings, the fingerprints, one RunRequest per finding and one audit
record per request in a fresh SQLite task database. Median of 3, each on a fresh database and
cursor; then one tick from the new cursor (nothing new).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 27)
N = 1_000_000
GOAL_S = 5.0


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from dagster import AssetMaterialization, DagsterInstance, MultiPartitionKey, build_sensor_context

    from bench.fleet_gen import build
    from qlrf.scoring.stages import run_drift
    from resources.alerts import AlertsResource
    from resources.remediation import RemediationResource
    from resources.warehouse import WarehouseResource
    from sensors.findings import build_drift_findings_sensor

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        wh = build(Path(tmp), DAY, N)
        scored = run_drift(wh, DAY, "aws", datetime(2026, 11, 27, 12, tzinfo=UTC))
        print(f"built and scored a {scored.rows:,}-VM drift partition in {time.perf_counter() - started:.1f} s (not timed)")

        instance = DagsterInstance.ephemeral()
        instance.report_runless_asset_event(
            AssetMaterialization("drift_scores", partition=MultiPartitionKey({"date": DAY.isoformat(), "platform": "aws"}))
        )
        sensor = build_drift_findings_sensor()
        times, result = [], None
        for rep in range(3):
            url = f"sqlite:///{tmp}/tasks-{rep}.db"
            resources = {
                "warehouse": WarehouseResource(root=wh.root),
                "remediation": RemediationResource(database_url=url),
                "alerts": AlertsResource(enabled=False),
            }
            with build_sensor_context(instance=instance, cursor=None, resources=resources) as context:
                t0 = time.perf_counter()
                result = sensor.evaluate_tick(context)
                times.append(time.perf_counter() - t0)
        with build_sensor_context(instance=instance, cursor=result.cursor, resources=resources) as context:
            t0 = time.perf_counter()
            idle = sensor.evaluate_tick(context)
            idle_s = time.perf_counter() - t0

    requests = result.run_requests
    kinds: dict[str, int] = {}
    for r in requests:
        kinds[r.tags["qlrf/finding_kind"]] = kinds.get(r.tags["qlrf/finding_kind"], 0) + 1
    median = statistics.median(times)
    print(f"findings: {len(requests)} run request(s) {kinds}; one sensor_request audit record each")
    print(f"one sensor tick over {N:,} VMs: {median:.2f} s (median of 3: {', '.join(f'{t:.2f}' for t in times)}) [goal < {GOAL_S:g} s]")
    print(f"next tick from the cursor: {len(idle.run_requests)} request(s) in {idle_s * 1000:.0f} ms")
    return 0 if median < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
