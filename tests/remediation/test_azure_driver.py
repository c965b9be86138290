"""The Azure driver through azure-mgmt-compute against the HTTPS ARM fake: a Uniform scale set's
model moves to the golden gallery image and its instances are upgraded wave by wave."""

from __future__ import annotations

import copy
import json

import pytest

from qlrf.inventory.connectors.azure import AzureConfig
from qlrf.remediation.drivers import DriverError
from qlrf.remediation.drivers.azure import (
    AzureDriver,
    AzureDriverConfig,
    config_from_env,
    image_reference,
    same_image,
)
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from tests.fakes.azure_fake import start_azure_fake
from tests.fakes.fixtures import azure_fixture
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
    fx = azure_fixture(subscriptions=1, vms_per_sub=2, vmss_uniform_size=6, snapshot_ratio=0)
    sub = next(iter(fx["subscriptions"]))
    data = fx["subscriptions"][sub]
    vmss = next(v for v in data["virtualMachineScaleSets"] if v["properties"].get("orchestrationMode") == "Uniform")
    golden = data["galleryImageVersions"][-1]["id"]
    with start_azure_fake(fx) as fake:
        yield fake, sub, vmss, golden


@pytest.fixture(scope="module")
def gate():
    return Gate.embedded()


def make_driver(fake) -> AzureDriver:
    config = AzureConfig(base_url=fake.base_url, connection_verify=fake.ca_path, retry_total=0)
    return AzureDriver(AzureDriverConfig(azure=config, credential=fake.credential(), lro_polling_interval=0.01))


def make_plan(sub, vmss, golden, **over):
    group = {"kind": "vmss", "platform": "azure", "account": sub, "region": vmss["location"], "name": vmss["name"], "size": 6}
    kwargs = {"groups": [group], "waves": three_waves(vmss["name"]), "to_image": golden, "platform": "azure",
              "rollback": {"strategy": "previous_image"}, "max_unavailable": 2}
    kwargs.update(over)
    return plan_for(**kwargs)


def members(fake, vmss):
    return [r for r in fake.fixture["subscriptions"][vmss["id"].split("/")[2]]["virtualMachineScaleSetVMs"]
            if r["id"].lower().startswith(vmss["id"].lower() + "/")]


def run(plan, driver, gate, audit):
    return execute_plan(plan, driver=driver, gate=gate, audit=audit, requested_by="sensor:drift_findings_sensor",
                        fleet_size=100, now=NOW, poll_interval=0.1, log=lambda _m: None)


def test_scale_set_model_and_instances_move_to_the_golden_image(estate, gate, tmp_path):
    fake, sub, vmss, golden = estate
    previous = dict(vmss["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"])
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    result = run(make_plan(sub, vmss, golden), make_driver(fake), gate, audit)

    assert result.state == "succeeded", result.reason
    model = fake.resource(vmss["id"])["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]
    assert model == {"id": golden}  # merge patch removed the marketplace keys the gallery id replaces
    for vm in members(fake, vmss):
        assert vm["properties"]["latestModelApplied"] is True
        assert vm["properties"]["storageProfile"]["imageReference"] == {"id": golden}
    assert [len(w.details[vmss["name"]]["upgraded"]) for w in result.waves] == [1, 3, 2]
    assert [w.details[vmss["name"]]["calls"] for w in result.waves] == [1, 2, 1]  # max_unavailable 2
    assert result.waves[0].details["prepare"][vmss["name"]]["previous_image"] == previous
    calls = [(r.method, r.path.rsplit("/", 1)[-1].lower(), r.status) for r in fake.requests]
    assert ("PATCH", vmss["name"].lower(), 200) in calls and calls.count(("POST", "manualupgrade", 202)) == 4
    assert kinds(audit).count("health_gate") == 3 and audit.verify().ok


class StopCanary:
    def __init__(self, inner, fake, vmss):
        self.inner, self.fake, self.vmss = inner, fake, vmss

    def prepare(self, plan):
        return self.inner.prepare(plan)

    def run_wave(self, plan, index):
        details = self.inner.run_wave(plan, index)
        if index == 0:
            first = details[self.vmss["name"]]["upgraded"][0]
            self.fake.set_power_state(f"{self.vmss['id']}/virtualMachines/{first}", "PowerState/stopped")
        return details

    def health(self, plan, index):
        return self.inner.health(plan, index)

    def rollback(self, plan, waves_done):
        return self.inner.rollback(plan, waves_done)


def test_unhealthy_canary_restores_the_previous_image(estate, gate, tmp_path):
    fake, sub, vmss, golden = estate
    previous = {k: v for k, v in vmss["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"].items()}
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    result = run(make_plan(sub, vmss, golden, timeout_seconds=1), StopCanary(make_driver(fake), fake, vmss), gate, audit)

    assert result.state == "rolled_back" and "PowerState/stopped" in result.reason
    model = fake.resource(vmss["id"])["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]
    assert same_image(model, previous)
    assert all(same_image(vm["properties"]["storageProfile"]["imageReference"], previous) for vm in members(fake, vmss))
    assert result.rollback[vmss["name"]]["reverted"] == ["0"]
    assert kinds(audit)[-3:] == ["policy_decision", "rollback", "execution_end"]


def test_refusals_and_config(estate):
    fake, sub, vmss, golden = estate
    with pytest.raises(DriverError, match="neither an Azure image resource id nor a URN"):
        image_reference("ubuntu")
    assert image_reference("Canonical:ubuntu-24_04-lts:server:latest")["offer"] == "ubuntu-24_04-lts"
    fake.resource(vmss["id"])["properties"]["upgradePolicy"]["mode"] = "Automatic"
    with pytest.raises(DriverError, match="upgrade policy Automatic"):
        make_driver(fake).prepare(make_plan(sub, vmss, golden))
    config = config_from_env({"QLRF_AZURE_ENDPOINT": "https://127.0.0.1:9", "QLRF_AZURE_LRO_POLL_SECONDS": "0.5"})
    assert config.azure.base_url == "https://127.0.0.1:9" and config.lro_polling_interval == 0.5


@pytest.mark.slow
def test_dry_run_changes_nothing_and_lists_the_calls_the_real_run_makes(estate, gate, tmp_path):
    fake, sub, vmss, golden = estate
    plan = make_plan(sub, vmss, golden)
    before = copy.deepcopy(fake.fixture)
    dry_driver = make_driver(fake)
    dry, audit = dry_run_first(plan, dry_driver, tmp_path)
    assert writes(fake.requests) == [] and fake.fixture == before
    assert [c.name for c in dry.calls] == ["virtualMachineScaleSets.Update"] + ["virtualMachineScaleSets.UpdateInstances"] * 4
    assert sorted(i for c in dry.calls[1:] for i in c.params["instanceIds"]) == sorted(
        m["instanceId"] for m in members(fake, vmss))
    real = make_driver(fake)
    assert run(plan, real, gate, audit).state == "succeeded"
    assert sent(real) == sent(dry_driver)


def test_a_fresh_driver_rolls_back_or_resumes_from_the_checkpoint(estate):
    """The state protocol: what one driver did, another (a fresh process's) undoes or finishes from
    its JSON checkpoint alone."""
    fake, sub, vmss, golden = estate
    previous = dict(vmss["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"])
    plan = make_plan(sub, vmss, golden)
    first = make_driver(fake)
    first.prepare(plan)
    first.run_wave(plan, 0)
    saved = json.loads(json.dumps(first.checkpoint()))
    resumed = make_driver(fake)
    resumed.restore(saved)
    assert [len(resumed.run_wave(plan, i)[vmss["name"]]["upgraded"]) for i in (1, 2)] == [3, 2]
    assert all(same_image(vm["properties"]["storageProfile"]["imageReference"], {"id": golden}) for vm in members(fake, vmss))
    back = make_driver(fake)
    back.restore(json.loads(json.dumps(resumed.checkpoint())))
    assert sorted(back.rollback(plan, [0, 1, 2])[vmss["name"]]["reverted"], key=int) == [str(i) for i in range(6)]
    model = fake.resource(vmss["id"])["properties"]["virtualMachineProfile"]["storageProfile"]["imageReference"]
    assert same_image(model, previous)
    assert all(same_image(vm["properties"]["storageProfile"]["imageReference"], previous) for vm in members(fake, vmss))
