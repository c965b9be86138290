"""The predict assets through Dagster on the shared fixed-date sample day (tests/conftest.py
materialized_day, 2026-11-20; the predict assets run for vSphere's 1,400 VMs): every asset
lands with passing checks, `qlrf report` shows the section, and a malformed policy file fails the
asset naming the file and line while the previous partition stays, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetSelection, DagsterInstance, MultiPartitionKey, materialize

from qlrf.predict.report import predict_text
from qlrf.warehouse import Warehouse
from tests.helpers import all_assets, resources_for

PLATFORM_SEL = AssetSelection.assets("vm_risk", "risk_scores", "vm_cost")
FLEET_SEL = AssetSelection.groups("predict") - PLATFORM_SEL


@pytest.fixture(scope="module")
def day(materialized_day, tmp_path_factory):
    root, day_s = materialized_day
    instance = DagsterInstance.ephemeral()
    res = resources_for(root, tmp_path_factory.mktemp("estate-unused"))
    key = MultiPartitionKey({"date": day_s, "platform": "vsphere"})
    platform = materialize(all_assets(), selection=PLATFORM_SEL, partition_key=key, resources=res, instance=instance)
    fleet = materialize(all_assets(), selection=FLEET_SEL, partition_key=day_s, resources=res, instance=instance)
    return Warehouse(str(root)), res, key, instance, (platform, fleet), day_s


@pytest.mark.slow
def test_every_predict_asset_lands_with_passing_checks(day):
    wh, _res, _key, _instance, results, DAY = day
    for result in results:
        assert result.success
        checks = result.get_asset_check_evaluations()
        assert checks and all(c.passed for c in checks), [(c.asset_key, c.check_name) for c in checks if not c.passed]
    assert wh.num_rows("vm_risk", DAY, "vsphere") == wh.num_rows("vm_cost", DAY, "vsphere") > 1000
    for table in ("risk_sites", "capacity_plan", "capacity_recommendations", "cost_summary", "drift_forecast"):
        assert wh.exists(table, DAY), table
    assert wh.exists("reclaim_candidates", DAY)
    forecasts = wh.read("drift_forecast", DAY).to_pylist()
    assert forecasts and all(r["method"].startswith("carry forward") for r in forecasts)  # one day of history
    text = predict_text(wh, DAY)
    assert "Riskiest sites" in text and "Cost ESTIMATE" in text and "dr_failover: pending" not in text
    failover = [r for r in wh.read("capacity_recommendations", DAY).to_pylist() if r["kind"] == "dr_failover"]
    assert failover and all(r["state"] in ("fits at the target", "does not fit at the target") for r in failover)


@pytest.mark.slow
@pytest.mark.parametrize(("module", "attribute", "old", "new"), [
    ("qlrf.predict.risk", "WEIGHTS_PATH", "public_ip: 8", "public_ip: eight"),
    ("qlrf.predict.risk", "CVES_PATH", "severity: critical", "severity: dire"),
    ("qlrf.predict.cost", "PRICES_PATH", "hours_per_month: 730", "hours_per_month: -730"),
])
def test_a_malformed_policy_file_fails_naming_file_and_line_and_keeps_the_partition(
        day, tmp_path, monkeypatch, module, attribute, old, new):
    import importlib

    wh, res, key, instance, _, DAY = day
    target = importlib.import_module(module)
    text = getattr(target, attribute).read_text().replace(old, new, 1)
    bad = tmp_path / getattr(target, attribute).name
    bad.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if new in s)
    monkeypatch.setattr(target, attribute, bad)
    before = {t: Path(wh.file(t, DAY, "vsphere")).read_bytes() for t in ("vm_risk", "vm_cost")}
    result = materialize(all_assets(), selection=PLATFORM_SEL, partition_key=key, resources=res, instance=instance,
                         raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message + str(failure.step_failure_data.user_failure_data)
    assert f"{bad}:{line}:" in message and "previous partition stays" in message, message
    assert {t: Path(wh.file(t, DAY, "vsphere")).read_bytes() for t in ("vm_risk", "vm_cost")} == before
