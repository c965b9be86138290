"""GCP drills through google-cloud-compute (REST) against the in-repo GCE fake: snapshot -> disk ->
instance in the DR region, measured and removed; the DR region without quota fails at launch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1  # noqa: F401 - imported here (slow on a busy machine), not inside the timed locate step

from qlrf.dr.drivers.gcp import GcpDrillConfig, GcpDrillDriver
from qlrf.dr.runner import DrillRunner
from qlrf.dr.scope import resolve_scope
from qlrf.inventory.connectors.gcp import GcpConfig
from qlrf.remediation.audit import AuditLog
from qlrf.warehouse import Warehouse
from tests.dr.support import drill_plan
from tests.fakes.fixtures import REFERENCE_TIME, gcp_fixture
from tests.fakes.gcp_fake import start_gcp_fake

pytestmark = pytest.mark.slow
START = REFERENCE_TIME + timedelta(hours=1)  # the fixture's snapshots are dated relative to its fixed time


@pytest.fixture()
def gce():
    fx = gcp_fixture(projects=1, instances_per_project=6, zonal_mig_size=0, regional_mig_size=0, snapshot_ratio=1.0)
    with start_gcp_fake(fx) as fake:
        project = fx["workload_projects"][0]
        yield fake, project, fx["projects"][project]


def inventory(project, pdata, n=2):
    rows = []
    for inst in pdata["instances"][:n]:
        zone = inst["zone"].rsplit("/", 1)[-1]
        rows.append({"asset_id": inst["id"], "platform": "gcp", "account": project, "region": zone.rsplit("-", 1)[0],
                     "zone": zone, "name": inst["name"], "state": "running", "site": "syd1"})
    return rows


def runner(fake, tmp_path):
    driver = GcpDrillDriver(GcpDrillConfig(gcp=GcpConfig(api_endpoint=fake.base_url, credentials=AnonymousCredentials())))
    return DrillRunner(driver, audit=AuditLog(f"sqlite:///{tmp_path / 'audit.db'}"), warehouse=Warehouse(str(tmp_path / "wh")),
                       actor="cli:tester", now=lambda: START, poll_interval=0.01)


def drill_resources(pdata):
    return sorted(i["name"] for coll in ("instances", "disks") for i in pdata[coll] if "qlrf-drill" in (i.get("labels") or {}))


def test_instances_are_restored_from_their_newest_snapshot_in_the_dr_region_and_removed(gce, tmp_path):
    fake, project, pdata = gce
    before = {coll: len(pdata[coll]) for coll in ("instances", "disks", "snapshots")}
    seen = []
    plan = drill_plan("gcp", target="us-west1", scope={"site": "syd1"}, rpo=30 * 86400)
    result = runner(fake, tmp_path).run(plan, resolve_scope(plan, inventory(project, pdata)),
                                        on_step=lambda step, _n: seen.append((step, drill_resources(pdata))))
    for row, inv in zip(result.rows, sorted(inventory(project, pdata), key=lambda r: r["asset_id"]), strict=True):
        assert row["outcome"] == "passed", row["reason"]
        inst = next(i for i in pdata["instances"] if i["id"] == inv["asset_id"])
        boot = next(d["source"] for d in inst["disks"] if d["boot"])
        newest = max((s for s in pdata["snapshots"] if s["sourceDisk"] == boot), key=lambda s: s["creationTimestamp"])
        assert row["restore_point_id"] == newest["name"]
        assert row["rpo_achieved_seconds"] == (START - datetime.fromisoformat(newest["creationTimestamp"]).astimezone(UTC)).total_seconds()
        assert [s["status"] for s in json.loads(row["steps"])] == ["ok", "skipped", "ok", "ok", "ok", "ok"]
        assert sorted(e["kind"] for e in json.loads(row["cleanup"])) == ["disk", "instance"] and row["cleaned_up"], row["cleanup"]
    assert len(dict(seen)["verify"]) == 4  # a disk and an instance per VM while it ran, labelled with the drill
    assert drill_resources(pdata) == []
    assert {coll: len(pdata[coll]) for coll in ("instances", "disks", "snapshots")} == before


def test_a_dr_region_without_quota_fails_at_launch_and_removes_the_disks(gce, tmp_path):
    fake, project, pdata = gce
    fake.exhaust_quota(project)
    plan = drill_plan("gcp", target="us-west1", scope={"site": "syd1"}, rpo=30 * 86400)
    result = runner(fake, tmp_path).run(plan, resolve_scope(plan, inventory(project, pdata)))
    for row in result.rows:
        assert row["outcome"] == "failed"
        assert row["reason"].startswith("launch: no capacity in us-west1-a (quotaExceeded)")
        assert [e["kind"] for e in json.loads(row["cleanup"])] == ["disk"] and row["cleaned_up"]
    assert drill_resources(pdata) == []
