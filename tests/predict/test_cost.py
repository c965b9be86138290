"""Cost estimates: list price x hours, vSphere at the configured rate, unknown types named and never
zero, stopped VMs at their disks, right-sizing hints; the price file validated with file:line."""

from __future__ import annotations

import pytest

from qlrf.inventory.instance_types import default_instance_types
from qlrf.predict import cost
from qlrf.predict.policyfile import PolicyFileError
from qlrf.predict.stages import run_cost
from qlrf.warehouse import Warehouse
from tests.predict.support import DAY, predict_day


@pytest.fixture(scope="module")
def costed(tmp_path_factory):
    wh = Warehouse(str(tmp_path_factory.mktemp("wh")))
    predict_day(wh)
    prices = cost.load_price_table()
    out = run_cost(wh, DAY, "aws", prices, default_instance_types())
    return wh, prices, out, {r["asset_id"]: r for r in wh.read("vm_cost", DAY, "aws").to_pylist()}


def test_running_vms_cost_list_price_and_unknown_types_are_named_not_zero(costed):
    _wh, prices, out, vms = costed
    m6i = prices.hourly("aws", "m6i.large") * prices.hours_per_month
    assert vms["i-0001"]["monthly_usd"] == pytest.approx(m6i, abs=0.01)
    assert vms["i-0001"]["cost_basis"] == "estimate: list price"
    mystery = vms["i-0004"]
    assert mystery["monthly_usd"] is None and mystery["unknown_type"] == "x9.mystery"
    assert mystery["cost_basis"] == "unknown: no price for aws type x9.mystery"
    assert out.notes["unknown_types"] == "x9.mystery" and out.notes["zero_or_unlabelled"] == "0"
    assert "ESTIMATE" in out.notes["estimate"] and str(prices.as_of) in out.notes["estimate"]


def test_stopped_vm_costs_its_disks_and_hints_name_a_cheaper_type(costed):
    _wh, prices, _out, vms = costed
    assert vms["i-0003"]["state"] == "stopped" and vms["i-0003"]["monthly_usd"] == prices.stopped_monthly["aws"]
    hint = vms["i-0001"]
    assert hint["rightsize_to"] == "t3.large"
    saving = (prices.hourly("aws", "m6i.large") - prices.hourly("aws", "t3.large")) * prices.hours_per_month
    assert hint["rightsize_monthly_saving"] == pytest.approx(saving, abs=0.01)


def test_summary_counts_unknown_and_never_sums_it_as_zero(costed):
    _wh, _prices, out, vms = costed
    total = next(r for r in out.table.to_pylist() if r["dimension"] == "all")
    assert total["vms"] == 4 and total["unknown_cost_vms"] == 1 and total["unknown_types"] == "x9.mystery"
    known = sum(v["monthly_usd"] for v in vms.values() if v["monthly_usd"] is not None)
    assert total["monthly_usd_estimate_known"] == pytest.approx(known, abs=0.01)
    owners = {r["key"] for r in out.table.to_pylist() if r["dimension"] == "owner"}
    assert owners == {"team-a"}


def test_vsphere_is_priced_from_its_own_size_at_the_configured_rate(tmp_path):
    from qlrf import sql
    from qlrf.inventory.contract import inventory_table
    from tests.ai.test_tools import AS_OF

    wh = Warehouse(str(tmp_path))
    vm = {"asset_id": "vm-1", "platform": "vsphere", "account": "vc", "region": "dc", "name": "a", "state": "running",
          "instance_type": "4vCPU-8192MB", "discovered_at": AS_OF, "tags": {}}
    wh.write("inventory", inventory_table([vm, {**vm, "asset_id": "vm-2", "instance_type": "hand-built"}]), DAY, "vsphere")
    prices = cost.load_price_table()
    con = sql.connect()
    cost.prepare(con, wh.source("inventory", DAY, "vsphere"), prices, default_instance_types())
    rows = {r["asset_id"]: r for r in cost.vm_cost(con).to_pylist()}
    rate = prices.vsphere_rate
    assert rows["vm-1"]["monthly_usd"] == pytest.approx((4 * rate.per_vcpu_hour + 8 * rate.per_gib_hour) * 730, abs=0.01)
    assert rows["vm-2"]["monthly_usd"] is None and rows["vm-2"]["unknown_type"] == "hand-built"


def test_malformed_price_file_names_the_file_and_line(tmp_path):
    text = cost.PRICES_PATH.read_text().replace("      t3.micro: 0.0104", "      t3.micro: free")
    path = tmp_path / "prices.yaml"
    path.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if "t3.micro: free" in s)
    with pytest.raises(PolicyFileError, match=rf"{path}:{line}: platforms.aws.types.t3.micro"):
        cost.load_price_table(path)
