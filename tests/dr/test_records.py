import json
from datetime import UTC, date, datetime, timedelta

import pytest

from qlrf.dr.records import DrillRecordError, drill_history, record_drill
from qlrf.warehouse import Warehouse

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)


def row(drill="d1", asset="i-1", outcome="passed", start=T0, platform="aws", **extra):
    return {"drill_id": drill, "plan_id": "drill-syd1", "plan_hash": "sha256:ab", "asset_id": asset,
            "platform": platform, "site": "syd1", "environment": "prod", "started_at": start,
            "healthy_at": start + timedelta(minutes=4), "ended_at": start + timedelta(minutes=6),
            "rto_seconds": 240.0, "rpo_achieved_seconds": 3600.0, "outcome": outcome,
            "steps": json.dumps([{"step": "launch", "seconds": 30, "status": "done"}]), "cleaned_up": True, **extra}


def test_a_drill_is_recorded_by_start_day_and_platform_and_read_back(tmp_path):
    wh = Warehouse(str(tmp_path))
    record_drill(wh, [row(asset="i-1"), row(asset="i-2"), row(asset="vm-1", platform="vsphere")])
    history = drill_history(wh, date(2026, 10, 30))
    assert sorted(history.column("asset_id").to_pylist()) == ["i-1", "i-2", "vm-1"]
    assert wh.exists("dr_drills", "2026-10-05", "aws") and wh.exists("dr_drills", "2026-10-05", "vsphere")


def test_a_second_drill_the_same_day_is_merged_and_rerecording_replaces(tmp_path):
    wh = Warehouse(str(tmp_path))
    record_drill(wh, [row(drill="d1")])
    record_drill(wh, [row(drill="d2", start=T0 + timedelta(hours=2))])
    record_drill(wh, [row(drill="d1", outcome="failed", reason="step launch: quota")])
    history = drill_history(wh, date(2026, 10, 5))
    assert sorted(zip(history.column("drill_id").to_pylist(), history.column("outcome").to_pylist(), strict=True)) == [
        ("d1", "failed"), ("d2", "passed")]


def test_history_window_is_relative_to_the_scored_day(tmp_path):
    wh = Warehouse(str(tmp_path))
    record_drill(wh, [row(drill="old", start=T0 - timedelta(days=200)), row(drill="new")])
    assert drill_history(wh, date(2026, 10, 5), days=180).column("drill_id").to_pylist() == ["new"]
    assert drill_history(wh, date(2026, 10, 4), days=365).column("drill_id").to_pylist() == ["old"]
    assert drill_history(wh, date(2026, 1, 1)).num_rows == 0


def test_bad_rows_are_refused_naming_the_row_and_field(tmp_path):
    wh = Warehouse(str(tmp_path))
    with pytest.raises(DrillRecordError, match="row 1: outcome 'ok'"):
        record_drill(wh, [row(), row(asset="i-2", outcome="ok")])
    with pytest.raises(DrillRecordError, match="same drill_id and asset_id"):
        record_drill(wh, [row(), row()])
    with pytest.raises(DrillRecordError, match="unknown field"):
        record_drill(wh, [row(colour="red")])
    assert wh.dates("dr_drills") == []
