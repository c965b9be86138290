"""Fault catalogue, partitions: new data is checked before it replaces a partition, and a day whose
checks failed is never reported as whole.

Reproduced on main before the fix: a truncated export dropped AWS from 5,200 to 3,907 VMs with `ok`
and exit 0; an inventory with duplicated ids was written before its uniqueness check ran.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetSelection,
    MaterializeResult,
    MultiPartitionKey,
    asset,
    materialize,
)

from pipelines.modes import failed_error_checks
from qlrf.quality import Gate, PartitionRejected
from qlrf.scoring.stages import SCORE_RANGES
from qlrf.warehouse import Warehouse
from tests.helpers import all_assets, resources_for

pytestmark = pytest.mark.fault


def _export(directory: Path, count: int) -> Path:
    directory.mkdir(parents=True)
    instances = [{"InstanceId": f"i-{n:05d}", "ImageId": "ami-1", "Placement": {"AvailabilityZone": "eu-west-1a"},
                  "State": {"Name": "running"}} for n in range(count)]
    (directory / "aws-instances.json").write_text(json.dumps({"Reservations": [{"OwnerId": "111111111111", "Instances": instances}]}))
    return directory


def _inventory_run(tmp_path: Path, day: str, export: Path, monkeypatch):
    monkeypatch.setenv("QLRF_SOURCE_AWS", f"files:{export}")
    key = MultiPartitionKey({"date": day, "platform": "aws"})
    return materialize(all_assets(), selection=AssetSelection.groups("inventory"), partition_key=key,
                       resources=resources_for(tmp_path / "wh", tmp_path / "estate"), raise_on_error=False)


@pytest.mark.slow
def test_a_truncated_export_does_not_replace_yesterdays_inventory(tmp_path, isolated_env, monkeypatch):
    assert _inventory_run(tmp_path, "2026-11-19", _export(tmp_path / "day1", 100), monkeypatch).success
    result = _inventory_run(tmp_path, "2026-11-20", _export(tmp_path / "day2", 74), monkeypatch)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
    assert "inventory 2026-11-20|aws refused" in failure.message and "26% fewer than the 100 of 2026-11-19" in failure.message
    wh = Warehouse(str(tmp_path / "wh"))
    assert not wh.exists("inventory", "2026-11-20", "aws") and not wh.exists("vm_snapshots", "2026-11-20", "aws")


@pytest.mark.slow
def test_a_truncated_rerun_of_the_same_day_keeps_its_partition(tmp_path, isolated_env, monkeypatch):
    assert _inventory_run(tmp_path, "2026-11-20", _export(tmp_path / "full", 100), monkeypatch).success
    assert not _inventory_run(tmp_path, "2026-11-20", _export(tmp_path / "cut", 50), monkeypatch).success
    assert Warehouse(str(tmp_path / "wh")).num_rows("inventory", "2026-11-20", "aws") == 100


def test_duplicated_ids_are_refused_before_the_partition_is_replaced(tmp_path):
    wh = Warehouse(str(tmp_path))
    wh.write("inventory", pa.table({"asset_id": ["i-1", "i-2"]}), "2026-11-20", "aws")
    dupes = pa.table({"asset_id": ["i-1", "i-2", "i-2", "i-3"]})
    with pytest.raises(PartitionRejected, match="1 duplicated asset_id"):
        wh.write("inventory", dupes, "2026-11-20", "aws", gate=Gate(keys=("asset_id",)))
    assert wh.num_rows("inventory", "2026-11-20", "aws") == 2


def test_a_score_outside_0_100_never_lands(tmp_path):
    wh = Warehouse(str(tmp_path))
    bad = pa.table({"drift_score": [12.5, 140.0], "pct_current": [50.0, 50.0]})
    with pytest.raises(PartitionRejected, match="drift_score outside"):
        wh.write("drift_scores", bad, "2026-11-20", "aws", gate=Gate(ranges=SCORE_RANGES["drift_scores"]))
    assert not wh.exists("drift_scores", "2026-11-20", "aws")


@pytest.mark.slow
def test_a_failed_error_check_fails_the_day_even_when_the_run_succeeds():
    @asset(check_specs=[AssetCheckSpec("all_scopes_discovered", asset="facts"), AssetCheckSpec("style", asset="facts")])
    def facts():
        yield MaterializeResult()
        yield AssetCheckResult(check_name="all_scopes_discovered", passed=False)  # error severity, not blocking
        yield AssetCheckResult(check_name="style", passed=False, severity=AssetCheckSeverity.WARN)

    result = materialize([facts])
    assert result.success
    assert failed_error_checks(result) == ["facts:all_scopes_discovered"]
