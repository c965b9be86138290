"""The code location loads, with the asset graph, jobs and schedules we expect."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from dagster import AssetKey, build_schedule_context

ROOT = Path(__file__).resolve().parents[2]


def test_asset_graph_snapshot():
    from pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    keys = sorted(k.to_user_string() for k in graph.get_all_asset_keys())
    assert keys == sorted([
        "discovered_inventory", "inventory", "vm_snapshots", "cloud_images", "scaling_groups", "golden_images", "vm_drift", "drift_scores", "vm_compliance",
        "compliance_scores", "vm_dr", "dr_scores", "fleet_report", "fleet_sites", "drift_trends", "inventory_quality", "image_packages", "fleet_summary", "golden_current",
        "ai_insights", "dr_failover_scenarios", "dr_trends", "vm_risk", "risk_scores", "vm_cost", "risk_sites",
        "capacity_plan", "capacity_recommendations", "reclaim_candidates", "cost_summary", "drift_forecast",
        "drift_breakdown", "compliance_controls", "dr_breakdown",
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


def _starts(defs) -> dict[str, str]:
    """Each partitioned asset's first daily partition key."""
    from dagster import MultiPartitionsDefinition

    graph = defs.resolve_asset_graph()
    starts = {}
    for key in graph.get_all_asset_keys():
        partitions = graph.get(key).partitions_def
        if isinstance(partitions, MultiPartitionsDefinition):
            partitions = next(d.partitions_def for d in partitions.partitions_defs if d.name == "date")
        starts[key.to_user_string()] = partitions.start.date().isoformat()
    return starts


def test_partitions_start_on_the_estates_first_day_not_on_new_year():
    """A healthy install showed 1,336 "missing" partitions: every day since 2026-01-01 per platform."""
    from pipelines.definitions import build_definitions
    from qlrf.dates import ESTATE_FIRST_DAY

    assert ESTATE_FIRST_DAY.isoformat() == "2026-09-02"  # the sample's trend window: 60 days either side of 2026-11-01
    starts = _starts(build_definitions({}))
    assert set(starts.values()) == {"2026-09-02"} and len(starts) == 34  # every partitioned asset, ai_insights, DR and predictive roll-ups, page tables too


def test_partitions_start_is_configurable_and_jobs_follow():
    from pipelines.definitions import build_definitions

    defs = build_definitions({"QLRF_PARTITIONS_START": "2026-11-01"})
    assert set(_starts(defs).values()) == {"2026-11-01"}
    job = defs.resolve_job_def("platform_daily_job")
    keys = job.partitions_def.get_partition_keys(current_time=datetime(2026, 11, 3, 12))
    assert keys[0] == "2026-11-01|aws" and len(keys) == 3 * 4
    with pytest.raises(ValueError, match="QLRF_PARTITIONS_START: 'first of may' is not a date"):
        build_definitions({"QLRF_PARTITIONS_START": "first of may"})


@pytest.mark.slow
def test_the_code_location_module_reads_no_partitions_start_at_import(tmp_path):
    """A bad value fails when the definitions are built (naming the variable), never the import."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("QLRF_")}, "QLRF_PARTITIONS_START": "nope"}
    code = "import pipelines.definitions as d\ntry:\n    d.defs\nexcept ValueError as e:\n    print(e)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "QLRF_PARTITIONS_START: 'nope' is not a date: expected YYYY-MM-DD"
