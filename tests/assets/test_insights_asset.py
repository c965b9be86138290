"""ai_insights materialised by Dagster over the sample day, and over a quiet day with nothing to report."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from dagster import DagsterInstance, materialize

from assets.insights import ai_insights
from qlrf.ai import insights as ins
from qlrf.ai.agents import load_agents
from qlrf.warehouse import Warehouse
from resources.remediation import RemediationResource
from resources.warehouse import WarehouseResource

pytestmark = pytest.mark.slow


def _run(root: str, day: str, tmp_path):
    resources = {"warehouse": WarehouseResource(root=root),
                 "remediation": RemediationResource(database_url=f"sqlite:///{tmp_path / 'tasks.db'}")}
    result = materialize([ai_insights], partition_key=day, resources=resources, instance=DagsterInstance.ephemeral(),
                         raise_on_error=False)
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    (mat,) = result.asset_materializations_for_node("ai_insights")
    return Warehouse(root).read("ai_insights", day), check, mat.metadata


def test_sample_day_insights_are_ranked_grounded_and_actionable(materialized_day, tmp_path):
    warehouse, day = materialized_day
    table, check, meta = _run(str(warehouse), day, tmp_path)
    assert check.passed and table.schema.equals(ins.INSIGHTS_SCHEMA, check_metadata=False)
    rows = table.to_pylist()
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    kinds = {r["kind"] for r in rows}
    # The sample registry revokes one version per family and this is the first day: all revocations are new.
    assert {"new_revocation", "dr_gap", "waiver_expiry"} <= kinds
    agents = load_agents()
    for r in rows:
        assert r["task_type"] in agents[r["agent"]].task_types, r
    wh = Warehouse(str(warehouse))
    running_revoked = sum(1 for v in wh.read_platforms("vm_drift", day, ("aws", "azure", "gcp", "vsphere")).to_pylist()
                          if v["state"] == "running" and v["status"] == "revoked")
    revocations = [json.loads(r["facts"]) for r in rows if r["kind"] == "new_revocation"]
    assert sum(f["running_vms"] for f in revocations) == running_revoked
    expired = next(json.loads(r["facts"]) for r in rows if r["subject"] == "W-2026-009")
    assert expired["expired"] is True and expired["vms_failing"] > 0
    assert meta["dagster/row_count"].value == len(rows)


def _quiet_day(root: str, day: str) -> None:
    """A day where nothing needs attention: no revocation, flat drift, every VM ready, no waiver near expiry."""
    wh = Warehouse(root)
    wh.write("golden_images", pa.Table.from_pylist([{"family": "debian-12", "version": "3.3.3", "revoked": False,
                                                      "revoked_reason": None}]), day)
    vm = {"asset_id": "vm-1", "platform": "aws", "account": "1", "site": "lon1", "environment": "prod",
          "owner": "sre", "state": "running", "family": "debian-12", "image_version": "3.3.3", "status": "current"}
    wh.write("vm_drift", pa.Table.from_pylist([vm]), day, "aws")
    wh.write("vm_compliance", pa.Table.from_pylist(
        [{**vm, "failed_controls": [], "waived_controls": []}],
        schema=pa.schema([(k, pa.string()) for k in vm] + [("failed_controls", pa.list_(pa.string())),
                                                           ("waived_controls", pa.list_(pa.string()))])), day, "aws")
    wh.write("dr_scores", pa.Table.from_pylist([{"platform": "aws", "site": "lon1", "environment": "prod", "vms": 1,
                                                 "ready_vms": 1, "rpo_breaches": 0}]), day, "aws")
    wh.write("drift_trends", pa.Table.from_pylist([{"site": "lon1", "environment": "prod", "drift_score": 5.0,
                                                    "forecast_next_week": 5.0}]), day)


def test_a_quiet_day_writes_an_empty_partition_and_says_so(tmp_path):
    day = "2026-10-01"  # the shipped waivers expire 2026-10-31 and 2027-03-31: both outside the 14-day window
    root = str(tmp_path / "wh")
    _quiet_day(root, day)
    table, check, meta = _run(root, day, tmp_path)
    assert table.num_rows == 0 and table.schema.equals(ins.INSIGHTS_SCHEMA, check_metadata=False)
    assert check.passed and check.metadata["empty"].value is True
    assert meta["note"].value == "no findings: nothing needs attention today"
