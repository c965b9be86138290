"""GCP target kinds beyond the zonal MIG, through google-cloud-compute (REST) against the GCE fake:
a regional MIG and standalone instances (boot-disk swap) in one plan, a failing canary rolled back,
and a rollback from a checkpoint loaded into a fresh driver."""

from __future__ import annotations

import json

import pytest
from google.auth.credentials import AnonymousCredentials

from qlrf.inventory.connectors.gcp import GcpConfig
from qlrf.remediation.drivers.gcp import GcpDriverConfig
from qlrf.remediation.drivers.gcp_instance import GcpPlanDriver
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from tests.fakes.fixtures import gcp_fixture
from tests.fakes.gcp_fake import start_gcp_fake
from tests.remediation.support import NOW, AfterWave, audit_log, dry_run_first, kinds, plan_for, sent


def _tail(url: str) -> str:
    return url.rsplit("/", 1)[-1]


@pytest.fixture()
def estate():
    fx = gcp_fixture(projects=1, instances_per_project=12, zonal_mig_size=2, regional_mig_size=4, snapshot_ratio=0)
    project = next(p for p, d in fx["projects"].items() if d["instanceGroupManagers"])
    data = fx["projects"][project]
    mig = next(m for m in data["instanceGroupManagers"] if "region" in m)
    region = _tail(mig["region"])
    plain = [i for i in data["instances"]
             if not any(x["key"] == "created-by" for x in i.get("metadata", {}).get("items", []))
             and i["status"] == "RUNNING"]
    by_region: dict[str, list] = {}
    for inst in plain:
        by_region.setdefault(_tail(inst["zone"]).rsplit("-", 1)[0], []).append(inst)
    inst_region, instances = max(by_region.items(), key=lambda kv: len(kv[1]))
    used = {d.get("sourceImage") for d in data["disks"]}
    golden = next(i for d in fx["projects"].values() for i in d["images"]
                  if "deprecated" not in i and i["selfLink"] not in used)["selfLink"]
    with start_gcp_fake(fx) as fake:
        fake.set_operation_polls(0)
        yield fake, project, mig, region, instances[:3], inst_region, golden


def make_driver(fake) -> GcpPlanDriver:
    config = GcpConfig(api_endpoint=fake.base_url, credentials=AnonymousCredentials())
    return GcpPlanDriver(GcpDriverConfig(gcp=config, operation_poll_initial=0.01, operation_poll_maximum=0.05))


def make_plan(project, mig, region, instances, inst_region, golden, *, with_mig=True, **over):
    targets = [{"asset_id": i["id"], "platform": "gcp", "account": project, "region": inst_region, "name": i["name"]}
               for i in instances]
    ids = [t["asset_id"] for t in targets]
    groups = [{"kind": "mig", "platform": "gcp", "account": project, "region": region, "name": mig["name"],
               "size": mig["targetSize"]}] if with_mig else []
    g = [mig["name"]] if with_mig else []
    waves = [{"name": "canary", "canary": True, "groups": g, "group_percent": 25 if g else 100, "instances": ids[:1]},
             {"name": "batch-1", "groups": g, "group_percent": 75 if g else 100, "instances": ids[1:]}]
    kwargs = {"groups": groups, "instances": targets, "waves": waves, "to_image": golden, "platform": "gcp",
              "rollback": {"strategy": "previous_instance_template" if with_mig else "previous_image"},
              "max_unavailable": 2}
    kwargs.update(over)
    return plan_for(**kwargs)


def run(plan, driver, audit, **kw):
    return execute_plan(plan, driver=driver, gate=Gate.embedded(), audit=audit, requested_by="sensor:drift_findings_sensor",
                        fleet_size=100, now=NOW, poll_interval=0.05, log=lambda _m: None, **kw)


def boot(fake, project, name):
    """(status, boot disk name, its sourceImage) as the fake holds them."""
    data = fake.fixture["projects"][project]
    inst = next(i for i in data["instances"] if i["name"] == name)
    source = next((d["source"] for d in inst["disks"] if d.get("boot")), None)
    disk = next((d for d in data["disks"] if d["selfLink"] == source), {})
    return inst["status"], _tail(source or "-"), disk.get("sourceImage")


def regional_images(fake, project, mig):
    client = fake.region_instance_group_managers_client()
    managed = client.list_managed_instances(project=project, region=_tail(mig["region"]), instance_group_manager=mig["name"])
    return {mi.name: mi.version.instance_template for mi in managed}


def test_regional_mig_and_standalone_instances_in_one_plan(estate, tmp_path):
    fake, project, mig, region, instances, inst_region, golden = estate
    plan = make_plan(project, mig, region, instances, inst_region, golden)
    before = {i["name"]: boot(fake, project, i["name"]) for i in instances}
    dry_driver = make_driver(fake)
    dry, _ = dry_run_first(plan, dry_driver, tmp_path)
    names = [c.name for c in dry.calls]
    assert names[:2] == ["instanceTemplates.insert", "instanceGroupManagers.patch"]
    assert names.count("disks.insert") == 3 and names.count("instances.attachDisk") == 3
    assert all(boot(fake, project, n) == b for n, b in before.items())  # the dry run changed nothing

    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    driver = make_driver(fake)
    result = run(plan, driver, audit)
    assert result.state == "succeeded", result.reason
    assert sent(driver, params=False) == sent(dry_driver, params=False)
    new_template = result.waves[0].details["prepare"][mig["name"]]["new_template"]
    assert "/regions/" in new_template and set(regional_images(fake, project, mig).values()) == {new_template}
    assert [len(w.details[mig["name"]]["updated"]) for w in result.waves] == [1, 3]
    assert any("/regions/" in r.path and r.path.endswith("/applyUpdatesToInstances") for r in fake.requests)
    for inst in instances:
        status, disk, image = boot(fake, project, inst["name"])
        assert (status, image) == ("RUNNING", golden) and disk.endswith("-q" + plan.content_hash[7:15])
        kept = before[inst["name"]][1]  # the old boot disk is kept, detached, for a rollback
        assert any(d["name"] == kept and not d.get("users") for d in fake.fixture["projects"][project]["disks"])
    assert kinds(audit).count("health_gate") == 2 and audit.verify().ok


def test_failing_canary_rolls_the_mig_and_the_instance_back(estate, tmp_path):
    fake, project, mig, region, instances, inst_region, golden = estate
    plan = make_plan(project, mig, region, instances, inst_region, golden, timeout_seconds=1)
    before = {i["name"]: boot(fake, project, i["name"]) for i in instances}
    templates = regional_images(fake, project, mig)
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    stop = lambda index, _d: index == 0 and fake.set_instance_status(project, instances[0]["name"], "STOPPING")  # noqa: E731
    driver = AfterWave(make_driver(fake), stop)  # the canary instance never comes up healthy
    result = run(plan, driver, audit)

    assert result.state == "rolled_back" and "status STOPPING" in result.reason
    assert {i["name"]: boot(fake, project, i["name"]) for i in instances} == before
    disks = {d["name"] for d in fake.fixture["projects"][project]["disks"]}
    assert not any(d.endswith("-q" + plan.content_hash[7:15]) for d in disks)  # the new disk is deleted
    assert regional_images(fake, project, mig) == templates
    assert kinds(audit)[-3:] == ["policy_decision", "rollback", "execution_end"]


def test_rollback_from_a_checkpoint_in_a_fresh_driver(estate, tmp_path):
    fake, project, mig, region, instances, inst_region, golden = estate
    plan = make_plan(project, mig, region, instances, inst_region, golden, with_mig=False)
    before = {i["name"]: boot(fake, project, i["name"]) for i in instances}
    first = make_driver(fake)
    paused = run(plan, first, audit_log(f"sqlite:///{tmp_path / 'audit.db'}"), stop_after=0)
    assert paused.state == "paused" and boot(fake, project, instances[0]["name"])[2] == golden
    state = json.loads(json.dumps(first.checkpoint()))  # what the journal stores

    fresh = make_driver(fake)
    fresh.restore(state)
    details = fresh.rollback(plan, [0])
    assert details[instances[0]["id"]]["steps"][0] == "stopped"
    assert {i["name"]: boot(fake, project, i["name"]) for i in instances} == before


def test_a_swap_cut_off_between_detach_and_attach_is_rolled_back_from_the_checkpoint(estate):
    """The crash a journal exists for: the old boot disk is detached, the new one not yet attached."""
    fake, project, mig, region, instances, inst_region, golden = estate
    plan = make_plan(project, mig, region, instances[:1], inst_region, golden, with_mig=False,
                     waves=[{"name": "canary", "canary": True, "instances": [instances[0]["id"]]}])
    before = boot(fake, project, instances[0]["name"])
    first = make_driver(fake)
    first.prepare(plan)
    part = first.instances
    s = part.swaps[instances[0]["id"]]
    part._create_disk(s)
    where = {"project": project, "zone": s.zone, "instance": s.name}
    part.base._done(part._instances().stop(**where), "stop")
    part.base._done(part._instances().detach_disk(device_name=s.device_name, **where), "detach")
    assert boot(fake, project, s.name)[1] == "-"  # no boot disk: the instance cannot start like this
    state = json.loads(json.dumps(first.checkpoint()))

    fresh = make_driver(fake)
    fresh.restore(state)
    steps = fresh.rollback(plan, [0])[instances[0]["id"]]["steps"]
    assert steps[0].startswith("attached") and "started" in steps
    assert boot(fake, project, s.name) == before
