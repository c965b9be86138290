"""The last three read-only tools: alert deliveries from the ledger, the failover simulation (and what
it needs to run), and a cost estimate from the shipped list-price table; each through the ToolBox."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from qlrf.ai.tools import AUDIT_KIND, READ_ONLY_TOOLS, ToolBox, ToolContext
from qlrf.ai.tools.cost import load_prices
from qlrf.alerts.ledger import AlertLedger
from qlrf.baselines.contracts import REGISTRY_SCHEMA
from qlrf.inventory.contract import inventory_table, snapshot_table
from qlrf.remediation.audit import AuditLog
from qlrf.scoring import stages
from qlrf.warehouse import Warehouse
from tests.ai.test_tools import AS_OF, DAY, REGISTRY, VMS

TYPES = {"i-0001": "m6i.large", "i-0002": "m6i.large", "i-0003": "t3.medium", "i-0004": "x9.mystery"}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    """One AWS day with instance types (one unknown to the price table), scored for drift and DR."""
    wh = Warehouse(str(tmp_path_factory.mktemp("wh")))
    wh.write("golden_images", pa.Table.from_pylist(REGISTRY, schema=REGISTRY_SCHEMA), DAY)
    wh.write("inventory", inventory_table([{**vm, "instance_type": TYPES[vm["asset_id"]]} for vm in VMS]), DAY, "aws")
    wh.write("vm_snapshots", snapshot_table([{"asset_id": "i-0001", "platform": "aws", "snapshot_id": "s1",
                                              "created_at": AS_OF - timedelta(hours=2)}]), DAY, "aws")
    stages.run_drift(wh, DAY, "aws", AS_OF)
    stages.run_dr(wh, DAY, "aws", AS_OF)
    return wh


@pytest.fixture()
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'rf.db'}"


@pytest.fixture()
def audit(db_url) -> AuditLog:
    return AuditLog(db_url)


@pytest.fixture()
def box(warehouse, audit, db_url) -> ToolBox:
    ledger = AlertLedger(db_url)
    for minutes, key, channel, kind, severity in [
        (40, "run_failure|r-0", "slack", "run_failure", None),  # recorded before severities were kept
        (30, "drift_findings|2026-11-20|aws|ab12", "slack", "drift_findings", "critical"),
        (20, "run_failure|r-1", "slack", "run_failure", "warning"),
        (10, "drift_findings|2026-11-20|gcp|cd34", "webhook", "drift_findings", "critical"),
        (5, "approval_expiring|t-9", "slack", "approval_expiring", "warning"),
    ]:
        ledger.mark(key, channel, kind, AS_OF - timedelta(minutes=minutes), severity)
    return ToolBox(READ_ONLY_TOOLS, ToolContext(warehouse, audit), audit, conversation="c1")


def _ok(result: dict) -> dict:
    assert result["status"] == "ok", result
    return result


def test_the_three_new_tools_are_read_only_with_closed_schemas():
    tools = {t.name: t for t in READ_ONLY_TOOLS}
    for name in ("query_alerts", "simulate_failover", "estimate_cost"):
        d = tools[name].definition()
        assert d["annotations"]["readOnlyHint"] is True and d["annotations"]["destructiveHint"] is False
        assert d["inputSchema"]["additionalProperties"] is False


def test_query_alerts_newest_first_and_filtered(box):
    r = _ok(box.call("query_alerts", {}))
    assert [a["key"] for a in r["rows"]] == ["approval_expiring|t-9", "drift_findings|2026-11-20|gcp|cd34",
                                             "run_failure|r-1", "drift_findings|2026-11-20|aws|ab12", "run_failure|r-0"]
    assert r["rows"][0] == {"key": "approval_expiring|t-9", "kind": "approval_expiring", "channel": "slack",
                            "severity": "warning", "sent_at": (AS_OF - timedelta(minutes=5)).isoformat()}
    assert r["facts"]["source"] == "alert ledger" and r["facts"]["table"] == "rf_alert_ledger"
    drift = _ok(box.call("query_alerts", {"kind": "drift_findings", "channel": "slack"}))
    assert [a["key"] for a in drift["rows"]] == ["drift_findings|2026-11-20|aws|ab12"]
    prefix = _ok(box.call("query_alerts", {"key_prefix": "drift_findings|2026-11-20|"}))
    assert len(prefix["rows"]) == 2 and prefix["matching"] == 2


def test_query_alerts_key_prefix_is_a_literal_not_a_pattern(box):
    r = _ok(box.call("query_alerts", {"key_prefix": "%"}))
    assert r["rows"] == [] and r["matching"] == 0
    one = _ok(box.call("query_alerts", {"key_prefix": "run_failure|", "limit": 1}))
    assert one["rows"][0]["key"] == "run_failure|r-1"


def test_query_alerts_filters_by_severity_and_leaves_out_rows_without_one(box):
    critical = _ok(box.call("query_alerts", {"severity": "critical"}))
    assert [a["key"] for a in critical["rows"]] == ["drift_findings|2026-11-20|gcp|cd34", "drift_findings|2026-11-20|aws|ab12"]
    warning = _ok(box.call("query_alerts", {"severity": "warning", "kind": "run_failure"}))
    assert [a["key"] for a in warning["rows"]] == ["run_failure|r-1"] and warning["matching"] == 1
    assert "severity is null on rows recorded before" in warning["facts"]["holds"]


def test_simulate_failover_without_a_scope_says_what_is_missing_and_what_vm_dr_shows(box):
    r = _ok(box.call("simulate_failover", {"environment": "prod"}))
    assert r["simulated"] is False
    assert {m["what"] for m in r["missing"]} == {"failure scope"}
    assert r["readiness"]["vms"] == 3 and not any("rto" in k.lower() or "rpo" in k.lower() for k in r["readiness"])
    assert r["facts"]["table"] == "vm_dr" and r["facts"]["day"] == "2026-11-20"


def test_simulate_failover_of_a_site_runs_the_simulator_and_cites_what_it_read(box):
    r = _ok(box.call("simulate_failover", {"site": "lon1", "environment": "prod"}))
    assert r["simulated"] is True and r["scenario"]["kind"] == "site" and r["scenario"]["value"] == "lon1"
    assert r["affected_vms"] == 2 and r["groups_breached"] == r["affected_groups"]  # no drill: RTO unmeasured
    assert [c["target"] for c in r["capacity"]] == ["fra1-dr"]  # policy/dr_targets.yaml: lon1 -> fra1-dr
    assert all(x["estimate_seconds"] is None and x["method"].startswith("unmeasured") for x in r["rto"])
    assert r["rto_measured_classes"] == 0 and r["rpo"]["vms_without_restore_point"] == 1
    assert r["facts"]["table"] == "vm_dr" and r["facts"]["day"] == "2026-11-20" and r["facts"]["drills_in_window"] == 0
    empty = _ok(box.call("simulate_failover", {"site": "nowhere"}))
    assert empty["affected_vms"] == 0 and empty["affected_groups"] == 0


def test_estimate_cost_sums_list_prices_and_names_unknown_types(box):
    prices = load_prices()
    r = _ok(box.call("estimate_cost", {"state": None}))
    m6i, t3, default = prices.hourly("aws", "m6i.large"), prices.hourly("aws", "t3.medium"), prices.default("aws")
    assert {(c["instance_type"], c["vms"], c["priced_at"]) for c in r["rows"]} == {
        ("m6i.large", 2, "list"), ("t3.medium", 1, "list"), ("x9.mystery", 1, "platform default")}
    assert r["unknown_instance_types"] == [{"platform": "aws", "instance_type": "x9.mystery", "vms": 1,
                                            "hourly_usd_each_at_default": default}]
    assert r["hourly_usd"] == pytest.approx(2 * m6i + t3 + default)
    assert r["hourly_usd_known"] == pytest.approx(2 * m6i + t3)
    assert r["monthly_usd"] == pytest.approx(r["hourly_usd"] * prices.hours_per_month, abs=0.01)
    assert "list price" in r["facts"]["prices"] and r["facts"]["table"] == "inventory"


def test_estimate_cost_defaults_to_running_vms_in_scope(box):
    r = _ok(box.call("estimate_cost", {"site": "lon1"}))
    assert r["vms"] == 2 and r["unknown_instance_types"] == []  # i-0003 is stopped
    assert r["facts"]["state"] == "running"


def test_the_price_table_has_a_default_per_platform():
    prices = load_prices()
    assert set(prices.platforms) == {"aws", "azure", "gcp", "vsphere"}
    assert all(prices.default(p) > 0 for p in prices.platforms)
    assert prices.hourly("aws", "no-such-type") is None


@pytest.mark.parametrize(("name", "arguments", "reason"), [
    ("query_alerts", {"severity": "fatal"}, "severity: Input should be 'info', 'warning' or 'critical'"),
    ("query_alerts", {"limit": 0}, "limit: Input should be greater than or equal to 1"),
    ("simulate_failover", {"rto_hours": 4}, "rto_hours: Extra inputs are not permitted"),
    ("simulate_failover", {"day": "2026-11-21"}, "vm_dr: no platform partition materialised for 2026-11-21"),
    ("simulate_failover", {"site": "lon1", "day": "2026-11-21"}, "no vm_dr partition for 2026-11-21"),
    ("estimate_cost", {"platform": "aws'; DROP TABLE t; --"}, "unknown platform"),
    ("estimate_cost", {"hours": 10}, "hours: Extra inputs are not permitted"),
])
def test_refusals_are_structured_errors_and_audited(box, audit, name, arguments, reason):
    result = box.call(name, arguments)
    assert result["status"] == "error" and reason in result["error"]
    [record] = audit.records(kind=AUDIT_KIND)
    assert (record.data["tool"], record.data["status"]) == (name, "error") and reason in record.data["error"]


def test_successful_calls_are_audited_with_their_facts(box, audit):
    _ok(box.call("query_alerts", {"kind": "run_failure", "severity": "warning"}))
    _ok(box.call("simulate_failover", {}))
    _ok(box.call("estimate_cost", {}))
    records = audit.records(kind=AUDIT_KIND)
    assert [r.data["tool"] for r in records] == ["query_alerts", "simulate_failover", "estimate_cost"]
    assert all(r.data["status"] == "ok" and r.data["facts"] for r in records)
    assert records[0].data["rows"] == 1


def test_alert_and_cost_rows_are_capped_by_the_toolbox(box):
    box.max_rows = 1
    alerts = _ok(box.call("query_alerts", {}))
    assert len(alerts["rows"]) == 1 and alerts["matching"] == 5
    assert alerts["truncated"]["rows_total"] == 5 and alerts["truncated"]["reason"] == "row limit"
    cost = _ok(box.call("estimate_cost", {"state": None}))
    assert len(cost["rows"]) == 1 and cost["truncated"]["rows_total"] == 3
    assert cost["vms"] == 4  # the totals cover the whole scope even when the lines are cut
