"""Every target kind from the planner to the gate and a dry run: GCP zonal and regional MIGs and
standalone instances from one finding, planned with the right location, allowed by the Rego gate
(from-family = to-family), and dry-run through the registry's GCP driver against the GCE fake."""

from __future__ import annotations

import pyarrow as pa
import pytest
from google.auth.credentials import AnonymousCredentials

from qlrf.inventory.connectors.gcp import GcpConfig
from qlrf.remediation.calls import CallRecorder
from qlrf.remediation.drivers.gcp import GcpDriverConfig
from qlrf.remediation.drivers.gcp_instance import GcpPlanDriver
from qlrf.remediation.dryrun import dry_run_plan
from qlrf.remediation.findings import findings_from_partition
from qlrf.remediation.gate import Gate, gate_request
from qlrf.remediation.planner import build_plans, group_location
from qlrf.remediation.policy import RemediationPolicy
from qlrf.scoring import drift
from tests.fakes.fixtures import gcp_fixture
from tests.fakes.gcp_fake import start_gcp_fake
from tests.remediation.support import NOW, audit_log

DAY = "2026-11-27"


def _tail(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _created_by(inst) -> str | None:
    return next((_tail(i["value"]) for i in inst.get("metadata", {}).get("items", []) if i["key"] == "created-by"), None)


@pytest.fixture()
def estate():
    fx = gcp_fixture(projects=1, instances_per_project=12, zonal_mig_size=3, regional_mig_size=3, snapshot_ratio=0)
    project = next(p for p, d in fx["projects"].items() if d["instanceGroupManagers"])
    data = fx["projects"][project]
    old, golden = "projects/img/global/images/deb-12-v1", "projects/img/global/images/deb-12-v2"
    rows, facts = [], []
    for mig in data["instanceGroupManagers"]:
        zone = _tail(mig["zone"]) if "zone" in mig else None
        region = _tail(mig["region"]) if "region" in mig else zone.rsplit("-", 1)[0]
        facts.append({"account": project, "region": region, "zone": zone, "group_name": mig["name"],
                      "desired_capacity": mig["targetSize"]})
    standalone = 0
    for inst in data["instances"]:
        group = _created_by(inst)
        if group is None and (inst["status"] != "RUNNING" or standalone == 3):
            continue
        standalone += group is None
        rows.append({"asset_id": inst["id"], "name": inst["name"], "platform": "gcp", "account": project,
                     "region": _tail(inst["zone"]).rsplit("-", 1)[0], "site": "ams1", "environment": "dev", "owner": "web",
                     "group": group, "state": "running", "image_ref": old, "family": "debian-12",
                     "image_version": "1", "image_channel": "prod", "current_version": "2", "versions_behind": 1,
                     "days_behind": 40, "status": "behind", "severity": "high"})
    registry = pa.Table.from_pylist([
        {"family": "debian-12", "version": v, "version_rank": r, "channel": "prod", "revoked": False, "platform": "gcp",
         "region": "*", "image_ref": ref} for v, r, ref in (("1", 1, old), ("2", 2, golden))])
    with start_gcp_fake(fx) as fake:
        yield fake, project, data, pa.Table.from_pylist(rows), facts, registry


def test_zonal_and_regional_migs_and_instances_are_planned_gated_and_dry_run(estate, tmp_path):
    fake, project, data, table, facts, registry = estate
    policy = RemediationPolicy.load()
    (finding,) = findings_from_partition(drift.drift_scores(table), table, policy, DAY)
    skipped: list[str] = []
    (plan,) = build_plans(finding, table, registry, policy, facts, skipped=skipped)
    assert skipped == []
    where = {g.name: g.region for g in plan.spec.targets.groups}
    for mig in data["instanceGroupManagers"]:  # zonal MIGs by zone, regional by region: as the driver reads them
        assert where[mig["name"]] == _tail(mig.get("zone") or mig["region"])
    standalone = sorted(t.name for t in plan.spec.targets.instances)
    assert standalone == sorted(r["name"] for r in table.to_pylist() if r["group"] is None) and standalone
    assert {t.from_family for t in plan.spec.targets.instances} == {"debian-12"} == {plan.spec.to_image.family}

    gate = Gate.embedded()
    for index in range(len(plan.spec.waves)):
        decision = gate.decide(gate_request(plan, wave=index, requested_by="sensor:drift_findings_sensor",
                                            fleet_size=100, window_is_open=True))
        assert decision.allow, decision.reasons

    config = GcpConfig(api_endpoint=fake.base_url, credentials=AnonymousCredentials())
    driver = GcpPlanDriver(GcpDriverConfig(gcp=config), recorder=CallRecorder(dry_run=True))
    result = dry_run_plan(plan, driver=driver, gate=gate, audit=audit_log(f"sqlite:///{tmp_path / 'a.db'}"),
                          requested_by="cli:alice", fleet_size=100, now=NOW, log=lambda _m: None)
    assert result.error is None and result.would_run, result.lines()
    names = [c.name for c in result.calls]
    assert names.count("instanceTemplates.insert") == len(data["instanceGroupManagers"])
    assert names.count("disks.insert") == names.count("instances.attachDisk") == len(standalone)
    regional = next(m["name"] for m in data["instanceGroupManagers"] if "region" in m)
    assert any(c.target == regional and c.params.get("region") for c in result.calls)


def test_group_location():
    assert group_location({"zone": "europe-west4-a"}, "europe-west4") == "europe-west4-a"
    assert group_location({"zone": None}, "us-central1") == "us-central1"
    assert group_location(None, "eu-west-1") == "eu-west-1"


def test_the_registry_gives_each_platform_the_driver_for_every_target_kind():
    from qlrf.remediation.drivers import driver_for
    from qlrf.remediation.drivers.azure import AzureDriverConfig
    from qlrf.remediation.drivers.azure_vm import AzurePlanDriver
    from qlrf.remediation.drivers.vsphere import VsphereDriverConfig
    from qlrf.remediation.drivers.vsphere_drs import VsphereDrsDriver

    recorder = CallRecorder(dry_run=True)
    for platform, config, cls in (("azure", AzureDriverConfig(), AzurePlanDriver), ("gcp", GcpDriverConfig(), GcpPlanDriver),
                                  ("vsphere", VsphereDriverConfig(), VsphereDrsDriver)):
        driver = driver_for(platform, config=config, recorder=recorder)
        assert isinstance(driver, cls) and driver.recorder is recorder
        assert callable(driver.checkpoint) and callable(driver.restore)
