"""The AI tools over the predict assets: get_risk (roll-up, one VM, riskiest VMs) and estimate_cost
reading vm_cost (unknown costs named, not priced at a default)."""

from __future__ import annotations

import pytest

from qlrf.ai.tools import READ_ONLY_TOOLS, ToolBox, ToolContext
from qlrf.inventory.instance_types import default_instance_types
from qlrf.predict import cost, risk
from qlrf.predict.stages import run_cost, run_risk
from qlrf.remediation.audit import AuditLog
from qlrf.scoring.compliance import load_catalogue
from qlrf.warehouse import Warehouse
from tests.predict.support import DAY, predict_day


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    wh = Warehouse(str(tmp_path_factory.mktemp("wh")))
    predict_day(wh)
    run_risk(wh, DAY, "aws", risk.load_weights(), risk.load_cves(), risk.control_severities(load_catalogue()))
    run_cost(wh, DAY, "aws", cost.load_price_table(), default_instance_types())
    return wh


@pytest.fixture()
def box(wh, tmp_path):
    audit = AuditLog(f"sqlite:///{tmp_path / 'a.db'}")
    return ToolBox(READ_ONLY_TOOLS, ToolContext(wh, audit), audit, conversation="c1")


def test_get_risk_roll_up_one_vm_and_riskiest(box):
    roll = box.call("get_risk", {"site": "lon1"})
    assert roll["status"] == "ok" and {r["environment"] for r in roll["rows"]} == {"prod", "dev"}
    assert roll["facts"]["table"] == "risk_scores" and "additive" in roll["facts"]["method"]
    one = box.call("get_risk", {"asset_id": "i-0002"})
    assert one["status"] == "ok", one
    (vm,) = one["rows"]
    assert vm["risk_level"] in ("high", "critical") and vm["top_factor_1"] == "drift_severity"
    assert vm["cve_ids"] == "CVE-2026-31337"
    top = box.call("get_risk", {"top": 2, "min_level": "medium"})
    assert [r["asset_id"] for r in top["rows"]][0] == "i-0002"
    assert all(r["risk_level"] != "low" for r in top["rows"])
    bad = box.call("get_risk", {"top": 500})
    assert bad["status"] == "error" and "top" in bad["error"]


def test_estimate_cost_reads_the_cost_asset_and_names_unknown_types(box):
    r = box.call("estimate_cost", {"state": None})
    assert r["status"] == "ok" and r["facts"]["table"] == "vm_cost" and "ESTIMATE" in r["facts"]["prices"]
    assert r["unknown_instance_types"] == [{"platform": "aws", "instance_type": "x9.mystery", "vms": 1, "cost": "unknown"}]
    mystery = next(x for x in r["rows"] if x["instance_type"] == "x9.mystery")
    assert mystery["monthly_usd"] is None  # never the platform default, never zero
    assert r["monthly_usd"] == pytest.approx(sum(x["monthly_usd"] or 0 for x in r["rows"]), abs=0.01)
