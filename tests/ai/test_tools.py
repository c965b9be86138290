"""The AI tool registry: each read-only tool over a small warehouse built here, the ToolBox's
schema refusals, caps, repeated-call refusal, structured errors and its audit records."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from qlrf.ai.tools import AUDIT_KIND, READ_ONLY_TOOLS, ToolBox, ToolContext
from qlrf.inventory.contract import inventory_table, snapshot_table
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.scoring import stages
from qlrf.warehouse import Warehouse
from tests.ai.support import openssl_packages, scored_aws_day
from tests.remediation.support import PENDING, make_plan

DAY = date(2026, 11, 20)
AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _image(version, rank, released, channel, ref, revoked=None):
    return {"family": "ubuntu-22", "os": "linux", "version": version, "version_rank": rank, "released_at": released,
            "channel": channel, "channel_level": ["dev", "staging", "prod"].index(channel), "parent": None,
            "revoked": revoked is not None, "revoked_reason": revoked, "sbom": None, "platform": "aws",
            "region": "*", "image_ref": ref}


REGISTRY = [
    _image("1.0", 1, T0 - timedelta(days=60), "prod", "ami-00000001", revoked="CVE-2026-0001"),
    _image("1.1", 2, T0 - timedelta(days=30), "prod", "ami-00000002"),
    _image("1.2", 3, T0, "prod", "ami-00000003"),
    {**_image("1.3", 4, T0 + timedelta(days=5), "dev", "ami-00000004"), "parent": "1.2"},
]


def _vm(n, site, env, image, state="running", platform="aws"):
    return {"asset_id": f"i-{n:04d}", "platform": platform, "account": "111", "region": "eu-west-2", "name": f"vm{n}",
            "state": state, "image_ref": image, "site": site, "environment": env, "owner": "team-a",
            "discovered_at": AS_OF, "tags": {}}


VMS = [_vm(1, "lon1", "prod", "ami-00000003"), _vm(2, "lon1", "prod", "ami-00000001"),
       _vm(3, "lon1", "dev", "ami-00000002", state="stopped"), _vm(4, "fra1", "prod", "ami-00000002")]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    """One AWS day, scored by the real stages: inventory -> vm_drift/compliance/dr and their scores."""
    wh = Warehouse(str(tmp_path_factory.mktemp("wh")))
    scored_aws_day(wh, DAY, AS_OF, REGISTRY, VMS)
    # A second platform whose only VM runs an image no contract knows: the tools read both partitions.
    wh.write("inventory", inventory_table([_vm(5, "syd1", "prod", "projects/x/global/images/y", platform="gcp")]), DAY, "gcp")
    wh.write("vm_snapshots", snapshot_table([]), DAY, "gcp")
    stages.run_drift(wh, DAY, "gcp", AS_OF)
    openssl_packages(wh, DAY)
    return wh


@pytest.fixture()
def audit(tmp_path) -> AuditLog:
    return AuditLog(f"sqlite:///{tmp_path / 'audit.db'}")


@pytest.fixture()
def box(warehouse, audit, tmp_path) -> ToolBox:
    tasks = TaskStore(f"sqlite:///{tmp_path / 'audit.db'}", audit=audit, clock=lambda: AS_OF)
    tasks.propose(make_plan(), "sensor:drift_breach", PENDING)
    return ToolBox(READ_ONLY_TOOLS, ToolContext(warehouse, audit, tasks), audit, conversation="c1")


def _ok(result: dict) -> dict:
    assert result["status"] == "ok", result
    return result


def test_every_tool_is_read_only_data_with_a_closed_schema():
    names = [t.name for t in READ_ONLY_TOOLS]
    assert names == ["query_assets", "get_drift_status", "get_golden_image", "check_compliance", "sbom_query",
                     "list_pending_tasks", "query_audit", "get_dr_status", "query_alerts", "simulate_failover",
                     "estimate_cost", "get_risk"]
    for tool in READ_ONLY_TOOLS:
        d = tool.definition()
        assert d["annotations"] == {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": tool.idempotent}
        assert d["inputSchema"]["additionalProperties"] is False and d["description"]


def test_query_assets_filters_and_cites_its_partition(box):
    r = _ok(box.call("query_assets", {"site": "lon1", "environment": "prod", "image_family": "ubuntu-22"}))
    assert [(a["asset_id"], a["image_version"], a["status"]) for a in r["rows"]] == [
        ("i-0001", "1.2", "current"), ("i-0002", "1.0", "revoked")]
    assert r["matching"] == 2
    assert r["facts"] == {"table": "vm_drift", "day": "2026-11-20", "partitions": ["2026-11-20|aws", "2026-11-20|gcp"]}
    gcp = _ok(box.call("query_assets", {"site": "syd1"}))
    assert [(a["asset_id"], a["platform"], a["status"]) for a in gcp["rows"]] == [("i-0005", "gcp", "unknown")]
    stopped = _ok(box.call("query_assets", {"state": "stopped"}))
    assert [a["asset_id"] for a in stopped["rows"]] == ["i-0003"]


def test_a_filter_value_is_a_value_never_sql(box):
    r = _ok(box.call("query_assets", {"site": "lon1' OR '1'='1"}))
    assert r["rows"] == [] and r["matching"] == 0


def test_drift_status_rollup_and_one_vm(box):
    r = _ok(box.call("get_drift_status", {"day": "2026-11-20", "site": "lon1", "environment": "prod"}))
    assert [(s["vms"], s["on_current"], s["revoked"]) for s in r["rows"]] == [(2, 1, 1)]
    vm = _ok(box.call("get_drift_status", {"asset_id": "i-0004"}))
    assert vm["rows"][0]["status"] == "behind" and vm["rows"][0]["versions_behind"] == 1
    assert vm["facts"]["table"] == "vm_drift"


def test_golden_image_versions_channels_and_revocations(box):
    r = _ok(box.call("get_golden_image", {"family": "ubuntu-22"}))
    assert [(v["version"], v["parent"]) for v in r["rows"]] == [("1.0", None), ("1.1", None), ("1.2", None), ("1.3", "1.2")]
    assert r["channels"] == {"dev": "1.3", "staging": "1.2", "prod": "1.2"}
    assert r["revocations"] == [{"version": "1.0", "reason": "CVE-2026-0001"}]
    assert r["facts"] == {"table": "golden_images", "day": "2026-11-20", "partition": "2026-11-20"}
    later = _ok(box.call("get_golden_image", {"family": "ubuntu-22", "day": "2026-11-23"}))
    assert later["facts"]["partition"] == "2026-11-20"  # the registry still in force three days on


def test_compliance_scores_and_a_vms_failed_controls(box):
    r = _ok(box.call("check_compliance", {"platform": "aws"}))
    assert {(s["site"], s["environment"]) for s in r["rows"]} == {("lon1", "prod"), ("lon1", "dev"), ("fra1", "prod")}
    assert all(0 <= s["compliance_score"] <= 100 for s in r["rows"])
    vm = _ok(box.call("check_compliance", {"asset_id": "i-0002"}))
    assert "failed_controls" in vm["rows"][0] and vm["rows"][0]["failed_controls"]


def test_sbom_query_names_images_and_vms(box):
    r = _ok(box.call("sbom_query", {"package": "openssl@<3.0.8"}))
    assert sorted(i["version"] for i in r["images"]) == ["1.0", "1.1"]
    assert sorted(v["asset_id"] for v in r["rows"]) == ["i-0002", "i-0003", "i-0004"] and r["vms_affected"] == 3
    bad = box.call("sbom_query", {"package": "openssl@~3.0"})
    assert bad["status"] == "error" and "cannot read version clause" in bad["error"]


def test_pending_tasks_and_audit_records(box):
    r = _ok(box.call("list_pending_tasks", {"environment": "prod"}))
    assert r["pending"] == 1 and r["rows"][0]["site"] == "lon1" and "plan_yaml" not in r["rows"][0]
    audit = _ok(box.call("query_audit", {"kind": AUDIT_KIND}))
    assert [a["data"]["tool"] for a in audit["rows"]] == ["list_pending_tasks"]
    assert "mac" not in audit["rows"][0]


def test_dr_status_rollup_and_one_vm(box):
    r = _ok(box.call("get_dr_status", {"site": "lon1", "environment": "prod"}))
    assert [(s["vms"], s["ready_vms"]) for s in r["rows"]] == [(2, 1)]
    vm = _ok(box.call("get_dr_status", {"asset_id": "i-0002"}))
    assert vm["rows"][0]["ready"] is False and vm["rows"][0]["gap"] == "no restore point"


@pytest.mark.parametrize(("name", "arguments", "reason"), [
    ("drop_table", {}, "unknown tool 'drop_table'"),
    ("query_assets", {"limit": "5"}, "limit: Input should be a valid integer"),
    ("query_assets", {"sql": "SELECT 1"}, "sql: Extra inputs are not permitted"),
    ("query_assets", {"limit": 100000}, "limit: Input should be less than or equal to 500"),
    ("get_golden_image", {}, "family: Field required"),
    ("get_drift_status", {"day": "2026-11-21"}, "drift_scores: no platform partition materialised for 2026-11-21"),
    ("get_drift_status", {"asset_id": "i-9999"}, "i-9999: no vm_drift row on 2026-11-20"),
    ("get_golden_image", {"family": "windows-2022"}, "no golden image family 'windows-2022'"),
    ("query_assets", "{not json", "arguments do not match the schema"),
])
def test_refusals_are_structured_errors_and_audited(box, audit, name, arguments, reason):
    result = box.call(name, arguments)
    assert result["status"] == "error" and reason in result["error"]
    [record] = audit.records(kind=AUDIT_KIND)
    assert (record.actor, record.subject, record.data["tool"], record.data["status"]) == ("ai", "conversation:c1", name, "error")
    assert reason in record.data["error"]


def test_a_repeated_identical_call_is_refused_but_different_arguments_run(box, audit):
    _ok(box.call("query_assets", {"site": "lon1"}))
    again = box.call("query_assets", {"site": "lon1", "limit": 50})  # the same call once defaults are filled in
    assert again["status"] == "refused" and "already made" in again["error"]
    _ok(box.call("query_assets", {"site": "fra1"}))
    assert [r.data["status"] for r in audit.records(kind=AUDIT_KIND)] == ["ok", "refused", "ok"]
    other = ToolBox(READ_ONLY_TOOLS, box.context, audit, conversation="c2")
    _ok(other.call("query_assets", {"site": "lon1"}))  # a new conversation starts with no memory


def test_rows_are_capped_and_the_cap_is_said(box, audit):
    box.max_rows = 2
    r = _ok(box.call("query_assets", {}))
    assert len(r["rows"]) == 2 and r["matching"] == 5
    assert r["truncated"] == {"rows_total": 5, "rows_returned": 2, "reason": "row limit", "max_rows": 2,
                              "max_bytes": box.max_bytes}
    assert audit.records(kind=AUDIT_KIND)[-1].data["truncated"]["rows_returned"] == 2


def test_bytes_are_capped_and_the_cap_is_said(box):
    box.max_bytes = 900
    r = _ok(box.call("query_assets", {}))
    assert len(json.dumps(r)) <= 900
    assert r["truncated"]["reason"] == "byte limit" and 0 < r["truncated"]["rows_returned"] < 5


def test_every_call_is_audited_with_its_arguments_and_facts(box, audit):
    _ok(box.call("get_drift_status", {"site": "fra1"}))
    [record] = audit.records(kind=AUDIT_KIND)
    assert record.data["arguments"] == {"site": "fra1"} and record.data["rows"] == 1
    assert record.data["facts"]["partitions"] == ["2026-11-20|aws", "2026-11-20|gcp"] and audit.verify().ok
