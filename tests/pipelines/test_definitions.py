"""The code location loads, with the asset graph, jobs and schedules we expect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, build_schedule_context

ROOT = Path(__file__).resolve().parents[2]


def test_asset_graph_snapshot():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    assert keys == sorted([
        "inventory", "vm_snapshots", "cloud_images", "scaling_groups", "golden_images", "vm_drift", "drift_scores", "vm_compliance",
        "compliance_scores", "vm_dr", "dr_scores", "fleet_report", "fleet_sites", "drift_trends", "inventory_quality", "image_packages", "fleet_summary", "golden_current",
        "ai_insights",
    ])
    assert graph.get(AssetKey("vm_drift")).parent_keys == {AssetKey("inventory"), AssetKey("golden_images")}
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "golden_images_job", "platform_daily_job", "fleet_report_job", "inventory_quality_job"
    }
    checks = {k.name for k in graph.asset_check_keys}
    assert {"has_rows", "unique_keys", "matches_contract", "drift_score_in_range", "expectations_pass"} <= checks
    # Every asset carries at least one check.
    assert {k.asset_key for k in graph.asset_check_keys} == graph.get_all_asset_keys()


def test_daily_schedule_requests_every_platform_once():
    from pipelines.definitions import defs

    schedule = defs.resolve_schedule_def("daily_platform_schedule")
    import datetime as dt

    ctx = build_schedule_context(
        scheduled_execution_time=dt.datetime(2026, 11, 27, 1, tzinfo=dt.UTC), repository_def=defs.get_repository_def()
    )
    requests = list(schedule.evaluate_tick(ctx).run_requests)
    assert [r.run_key for r in requests] == ["2026-11-27|aws", "2026-11-27|azure", "2026-11-27|gcp", "2026-11-27|vsphere"]
    assert str(requests[0].partition_key) == "2026-11-27|aws"


@pytest.mark.slow
def test_definitions_validate_with_the_cli(tmp_path):
    """What CI and `dg check defs` check: the workspace loads in a fresh process with an empty environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QLRF_")}
    env["DAGSTER_HOME"] = str(tmp_path)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr


SNAPSHOT = Path(__file__).with_name("definitions_snapshot.json")


def test_definitions_match_the_committed_snapshot():
    """Any change to asset keys, partitions, mappings, checks, jobs, schedules or sensor statuses shows in review."""
    import json

    from pipelines.definitions import defs
    from tests.pipelines.snapshot import definitions_snapshot

    current = definitions_snapshot(defs)
    if os.environ.get("QLRF_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert current == json.loads(SNAPSHOT.read_text()), "definitions changed: review, then QLRF_UPDATE_SNAPSHOT=1"
