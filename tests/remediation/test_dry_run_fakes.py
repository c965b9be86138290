"""Dry run against the Azure and GCP loopback fakes and vcsim: no mutating request reaches the
server, and the real run that follows makes exactly the calls the dry run listed."""

from __future__ import annotations

import copy

import pytest

from qlrf.remediation.calls import CallRecorder
from qlrf.remediation.dryrun import dry_run_plan
from qlrf.remediation.gate import Gate
from tests.remediation import test_azure_driver as az
from tests.remediation import test_gcp_driver as gc
from tests.remediation.support import NOW, audit_log, kinds

pytestmark = pytest.mark.slow


def _dry_run(plan, dry_driver, tmp_path):
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    dry = dry_run_plan(plan, driver=dry_driver, gate=Gate.embedded(), audit=audit, requested_by="cli:alice",
                       fleet_size=100, now=NOW, log=lambda _: None)
    assert dry.error is None and dry.would_run and kinds(audit) == ["dry_run"]
    return dry, audit


READ_ONLY_POSTS = ("/listManagedInstances",)  # GCE lists a MIG's members with a POST


def _writes(requests) -> list:
    """The requests that could change something on the server."""
    return [(r.method, r.path) for r in requests if r.method != "GET" and not r.path.endswith(READ_ONLY_POSTS)]


def test_azure_dry_run(tmp_path):
    fx = az.azure_fixture(subscriptions=1, vms_per_sub=2, vmss_uniform_size=6, snapshot_ratio=0)
    sub = next(iter(fx["subscriptions"]))
    data = fx["subscriptions"][sub]
    vmss = next(v for v in data["virtualMachineScaleSets"] if v["properties"].get("orchestrationMode") == "Uniform")
    golden = data["galleryImageVersions"][-1]["id"]
    with az.start_azure_fake(fx) as fake:
        plan = az.make_plan(sub, vmss, golden)
        before = copy.deepcopy(fake.fixture)
        dry_driver = az.make_driver(fake)
        dry_driver.recorder = CallRecorder(dry_run=True)
        dry, audit = _dry_run(plan, dry_driver, tmp_path)
        assert _writes(fake.requests) == [] and fake.fixture == before
        assert [c.name for c in dry.calls] == ["virtualMachineScaleSets.Update"] + ["virtualMachineScaleSets.UpdateInstances"] * 4
        assert sorted(i for c in dry.calls[1:] for i in c.params["instanceIds"]) == sorted(
            m["instanceId"] for m in az.members(fake, vmss))

        real = az.make_driver(fake)
        assert az.run(plan, real, Gate.embedded(), audit).state == "succeeded"
        assert [(c.name, c.target, dict(c.params)) for c in real.recorder.calls] == [
            (c.name, c.target, dict(c.params)) for c in dry.calls]


def test_gcp_dry_run(tmp_path):
    fx = gc.gcp_fixture(projects=1, instances_per_project=8, zonal_mig_size=6, regional_mig_size=2, snapshot_ratio=0)
    project = next(p for p, d in fx["projects"].items() if d["instanceGroupManagers"])
    mig = next(m for m in fx["projects"][project]["instanceGroupManagers"] if "zone" in m)
    used = {d.get("sourceImage") for d in fx["projects"][project]["disks"]}
    golden = next(i for d in fx["projects"].values() for i in d["images"]
                  if "deprecated" not in i and i["selfLink"] not in used)["selfLink"]
    with gc.start_gcp_fake(fx) as fake:
        plan = gc.make_plan(project, mig, golden)
        before = copy.deepcopy(fake.fixture)
        dry_driver = gc.make_driver(fake)
        dry_driver.recorder = CallRecorder(dry_run=True)
        dry, audit = _dry_run(plan, dry_driver, tmp_path)
        assert _writes(fake.requests) == [] and fake.fixture == before
        assert [c.name for c in dry.calls] == (["instanceTemplates.insert", "instanceGroupManagers.patch"]
                                               + ["instanceGroupManagers.applyUpdatesToInstances"] * 4)

        real = gc.make_driver(fake)
        assert gc.run(plan, real, Gate.embedded(), audit).state == "succeeded"
        assert [(c.name, c.target, dict(c.params)) for c in real.recorder.calls] == [
            (c.name, c.target, dict(c.params)) for c in dry.calls]
