"""Capacity: usage and growth per site x region x platform from inventory history, when a configured
limit is exceeded, and VMs stopped long enough to reclaim."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from qlrf import sql
from qlrf.inventory.contract import inventory_table
from qlrf.inventory.instance_types import default_instance_types
from qlrf.predict import capacity
from qlrf.predict.policyfile import PolicyFileError
from qlrf.warehouse import Warehouse

DAY = date(2026, 11, 20)


def _vm(i: int, state: str = "running", itype: str = "m6i.large"):
    return {"asset_id": f"i-{i:04d}", "platform": "aws", "account": "1", "region": "eu-west-2", "name": f"v{i}",
            "state": state, "instance_type": itype, "site": "lon1", "environment": "prod",
            "discovered_at": datetime(2026, 11, 1, tzinfo=UTC), "tags": {}}


@pytest.fixture()
def history(tmp_path) -> Warehouse:
    """14 days: one VM more every day (2 vCPU, 8 GiB each); i-0000 stopped throughout, i-0001 stopped
    only today; i-0002 of a type with no known size."""
    wh = Warehouse(str(tmp_path))
    for back in range(13, -1, -1):
        n = 20 - back
        vms = [_vm(0, "stopped"), _vm(1, "stopped" if back == 0 else "running"), _vm(2, itype="z9.huge")]
        vms += [_vm(i) for i in range(3, n)]
        wh.write("inventory", inventory_table(vms), DAY - timedelta(days=back), "aws")
    return wh


def test_plan_counts_sizes_growth_and_names_unknown_types(history):
    policy = capacity.CapacityPolicy(version=1, history_days=14, horizon_days=28, reclaim_after_days=10)
    con = sql.connect()
    assert capacity.prepare_history(con, history, DAY, 14, default_instance_types()) == 14
    (row,) = capacity.capacity_plan(con, policy).to_pylist()
    assert row["vms"] == 20 and row["vcpu"] == 19 * 2 and row["memory_gib"] == 19 * 8
    assert row["unknown_size_vms"] == 1 and row["unknown_types"] == "z9.huge"
    assert row["vcpu_growth_per_week"] == pytest.approx(14.0) and row["vcpu_forecast"] == pytest.approx(38 + 2 * 28)
    recs = capacity.recommendations(capacity.capacity_plan(con, policy), policy.model_copy(update={"limits": [
        capacity.Limit(site="lon1", vcpu=50, memory_gib=10_000)]}), DAY)
    vcpu = next(r for r in recs if r["resource"] == "vcpu")
    assert vcpu["state"] == "will exceed within 28 days" and vcpu["exceeds_on"] == DAY + timedelta(days=7)
    assert vcpu["note"] == "1 VM(s) of unknown size not counted"
    assert any(r["kind"] == "dr_failover" and r["state"] == "unknown" for r in recs)  # no vm_dr: nothing to simulate


def test_failover_needs_become_one_row_per_lost_site_target_and_resource():
    policy = capacity.CapacityPolicy(version=1)
    plan = pa.table({"site": pa.array([], pa.string()), "platform": pa.array([], pa.string())})
    needs = [{"lost_site": "syd1", "target": "sin1-dr", "running_vms": 10, "vcpu_needed": 40, "vcpu_available": 30,
              "memory_gib_needed": 80.0, "memory_gib_available": 200.0, "note": None}]
    recs = [r for r in capacity.recommendations(plan, policy, DAY, needs) if r["kind"] == "dr_failover"]
    assert [(r["site"], r["resource"], r["used"], r["capacity"], r["state"]) for r in recs] == [
        ("syd1", "vcpu", 40.0, 30.0, "does not fit at the target"),
        ("syd1", "memory_gib", 80.0, 200.0, "fits at the target")]
    assert all("sin1-dr" in r["note"] for r in recs)


def test_reclaim_needs_the_vm_stopped_for_the_whole_window(history):
    con = sql.connect()
    capacity.prepare_history(con, history, DAY, 14, default_instance_types())
    policy = capacity.CapacityPolicy(version=1, reclaim_after_days=10)
    assert capacity.reclaim_candidates(con, DAY, policy)["asset_id"].to_pylist() == ["i-0000"]
    longer = policy.model_copy(update={"reclaim_after_days": 20})  # more than the history covers
    assert capacity.reclaim_candidates(con, DAY, longer).num_rows == 0


def test_malformed_capacity_file_names_the_file_and_line(tmp_path):
    path = tmp_path / "capacity.yaml"
    path.write_text("version: 1\nlimits:\n  - {site: lon1, vcpu: 10, memory_gib: 10}\n  - {site: lon1, vcpu: -1, memory_gib: 1}\n")
    with pytest.raises(PolicyFileError, match=rf"{path}:4: limits.1.vcpu"):
        capacity.load_capacity(path)
