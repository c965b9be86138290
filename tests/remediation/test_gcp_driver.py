"""The GCP driver through google-cloud-compute (REST) against the GCE fake: a zonal MIG moves to a
new instance template with the golden image, explicitly wave by wave, and rolls back."""

from __future__ import annotations

import copy
import json

import pytest
from google.auth.credentials import AnonymousCredentials

from qlrf.inventory.connectors.gcp import GcpConfig
from qlrf.remediation.drivers.gcp import GcpDriver, GcpDriverConfig, config_from_env, image_url
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from tests.fakes.fixtures import gcp_fixture
from tests.fakes.gcp_fake import start_gcp_fake
from tests.remediation.support import (
    NOW,
    audit_log,
    dry_run_first,
    kinds,
    plan_for,
    sent,
    three_waves,
    writes,
)


@pytest.fixture()
def estate():
    fx = gcp_fixture(projects=1, instances_per_project=8, zonal_mig_size=6, regional_mig_size=2, snapshot_ratio=0)
    project = next(p for p, d in fx["projects"].items() if d["instanceGroupManagers"])
    mig = next(m for m in fx["projects"][project]["instanceGroupManagers"] if "zone" in m)
    used = {d.get("sourceImage") for d in fx["projects"][project]["disks"]}
    golden = next(i for d in fx["projects"].values() for i in d["images"]
                  if "deprecated" not in i and i["selfLink"] not in used)["selfLink"]  # no member runs it yet
    with start_gcp_fake(fx) as fake:
        yield fake, project, mig, golden


@pytest.fixture(scope="module")
def gate():
    return Gate.embedded()


def make_driver(fake) -> GcpDriver:
    config = GcpConfig(api_endpoint=fake.base_url, credentials=AnonymousCredentials())
    return GcpDriver(GcpDriverConfig(gcp=config, operation_poll_initial=0.01, operation_poll_maximum=0.05))


def make_plan(project, mig, golden, **over):
    zone = mig["zone"].rsplit("/", 1)[1]
    group = {"kind": "mig", "platform": "gcp", "account": project, "region": zone, "name": mig["name"], "size": 6}
    kwargs = {"groups": [group], "waves": three_waves(mig["name"]), "to_image": golden, "platform": "gcp",
              "rollback": {"strategy": "previous_instance_template"}, "max_unavailable": 2}
    kwargs.update(over)
    return plan_for(**kwargs)


def run(plan, driver, gate, audit):
    return execute_plan(plan, driver=driver, gate=gate, audit=audit, requested_by="sensor:drift_findings_sensor",
                        fleet_size=100, now=NOW, poll_interval=0.1, log=lambda _m: None)


def managed(fake, project, mig):
    zone = mig["zone"].rsplit("/", 1)[1]
    client = fake.instance_group_managers_client()
    return list(client.list_managed_instances(project=project, zone=zone, instance_group_manager=mig["name"]))


def boot_images(fake, project, mig):
    data = fake.fixture["projects"][project]
    names = {mi.name for mi in managed(fake, project, mig)}
    disks = {d["selfLink"]: d for d in data["disks"]}
    return {i["name"]: disks[i["disks"][0]["source"]]["sourceImage"] for i in data["instances"] if i["name"] in names}


def test_mig_moves_to_a_new_template_wave_by_wave(estate, gate, tmp_path):
    fake, project, mig, golden = estate
    old_template = mig["instanceTemplate"]
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    result = run(make_plan(project, mig, golden), make_driver(fake), gate, audit)

    assert result.state == "succeeded", result.reason
    new_template = result.waves[0].details["prepare"][mig["name"]]["new_template"]
    assert new_template.startswith(old_template + "-q")
    tpl = fake.instance_template(new_template)
    assert tpl["properties"]["disks"][0]["initializeParams"]["sourceImage"] == golden
    assert tpl["properties"]["machineType"] == fake.instance_template(old_template)["properties"]["machineType"]
    igm = next(g for g in fake.fixture["projects"][project]["instanceGroupManagers"] if g["name"] == mig["name"])
    assert igm["instanceTemplate"] == new_template
    policy = igm["updatePolicy"]
    assert policy["type"] == "OPPORTUNISTIC" and policy["replacementMethod"] == "RECREATE"
    assert policy["maxUnavailable"]["fixed"] == 2 and policy["maxSurge"]["fixed"] == 0
    assert all(mi.version.instance_template == new_template and mi.instance_status == "RUNNING"
               for mi in managed(fake, project, mig))
    assert set(boot_images(fake, project, mig).values()) == {golden}
    assert [len(w.details[mig["name"]]["updated"]) for w in result.waves] == [1, 3, 2]
    paths = [r.path for r in fake.requests]
    assert any("/zones/" in p and "/operations/" in p for p in paths) and any("/global/operations/" in p for p in paths)
    assert kinds(audit).count("health_gate") == 3 and audit.verify().ok


class StopCanary:
    def __init__(self, inner, fake, project):
        self.inner, self.fake, self.project = inner, fake, project

    def prepare(self, plan):
        return self.inner.prepare(plan)

    def run_wave(self, plan, index):
        details = self.inner.run_wave(plan, index)
        if index == 0:
            for name in details.values():
                self.fake.set_instance_status(self.project, name["updated"][0], "STOPPING")
        return details

    def health(self, plan, index):
        return self.inner.health(plan, index)

    def rollback(self, plan, waves_done):
        return self.inner.rollback(plan, waves_done)


def test_unhealthy_canary_patches_back_to_the_previous_template(estate, gate, tmp_path):
    fake, project, mig, golden = estate
    old_template = mig["instanceTemplate"]
    before = boot_images(fake, project, mig)
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    result = run(make_plan(project, mig, golden, timeout_seconds=1), StopCanary(make_driver(fake), fake, project), gate, audit)

    assert result.state == "rolled_back" and "instanceStatus STOPPING" in result.reason
    igm = next(g for g in fake.fixture["projects"][project]["instanceGroupManagers"] if g["name"] == mig["name"])
    assert igm["instanceTemplate"] == old_template
    assert all(mi.version.instance_template == old_template for mi in managed(fake, project, mig))
    after = boot_images(fake, project, mig)
    canary = result.waves[0].details[mig["name"]]["updated"][0]
    old_image = fake.instance_template(old_template)["properties"]["disks"][0]["initializeParams"]["sourceImage"]
    assert after[canary] == old_image and golden not in after.values()
    assert {k: v for k, v in after.items() if k != canary} == {k: v for k, v in before.items() if k != canary}
    assert kinds(audit)[-3:] == ["policy_decision", "rollback", "execution_end"]


def test_image_urls_and_config():
    assert image_url("projects/p/global/images/x") == "https://www.googleapis.com/compute/v1/projects/p/global/images/x"
    config = config_from_env({"QLRF_GCP_ENDPOINT": "http://127.0.0.1:9", "QLRF_GCP_OPERATION_POLL_SECONDS": "0.2"})
    assert config.gcp.api_endpoint == "http://127.0.0.1:9" and config.operation_poll_initial == 0.2


@pytest.mark.slow
def test_dry_run_changes_nothing_and_lists_the_calls_the_real_run_makes(estate, gate, tmp_path):
    fake, project, mig, golden = estate
    plan = make_plan(project, mig, golden)
    before = copy.deepcopy(fake.fixture)
    dry_driver = make_driver(fake)
    dry, audit = dry_run_first(plan, dry_driver, tmp_path)
    assert writes(fake.requests, ("/listManagedInstances",)) == [] and fake.fixture == before
    assert [c.name for c in dry.calls] == (["instanceTemplates.insert", "instanceGroupManagers.patch"]
                                           + ["instanceGroupManagers.applyUpdatesToInstances"] * 4)
    real = make_driver(fake)
    assert run(plan, real, gate, audit).state == "succeeded"
    assert sent(real) == sent(dry_driver)


def test_a_fresh_driver_rolls_back_or_resumes_from_the_checkpoint(estate):
    """The state protocol: what one driver did, another (a fresh process's) undoes or finishes from
    its JSON checkpoint alone."""
    fake, project, mig, golden = estate
    old_template = mig["instanceTemplate"]
    plan = make_plan(project, mig, golden)
    first = make_driver(fake)
    first.prepare(plan)
    first.run_wave(plan, 0)
    resumed = make_driver(fake)
    resumed.restore(json.loads(json.dumps(first.checkpoint())))
    assert [len(resumed.run_wave(plan, i)[mig["name"]]["updated"]) for i in (1, 2)] == [3, 2]
    assert set(boot_images(fake, project, mig).values()) == {golden}
    back = make_driver(fake)
    back.restore(json.loads(json.dumps(resumed.checkpoint())))
    assert len(back.rollback(plan, [0, 1, 2])[mig["name"]]["reverted"]) == 6
    igm = next(g for g in fake.fixture["projects"][project]["instanceGroupManagers"] if g["name"] == mig["name"])
    assert igm["instanceTemplate"] == old_template
    assert all(mi.version.instance_template == old_template for mi in managed(fake, project, mig))
    assert golden not in boot_images(fake, project, mig).values()
