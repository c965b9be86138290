"""apply_tags compliance plans on Azure VMs and GCE instances, through azure-mgmt-compute and
google-cloud-compute against the in-repo ARM and GCE fakes: proposed, approved and executed on the
same path as on AWS; a wave that fails its health gate removes exactly the tags it added; a person's
concurrent value is never overwritten; what cannot be executed is refused by name before any call."""

from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials

from qlrf.inventory.connectors.azure import AzureConfig
from qlrf.inventory.connectors.gcp import GcpConfig
from qlrf.remediation.compliance_plans import build_compliance_plans
from qlrf.remediation.drivers.azure import AzureDriverConfig
from qlrf.remediation.drivers.azure_vm import AzurePlanDriver
from qlrf.remediation.drivers.cloud_compliance import GcpDetachDriver
from qlrf.remediation.drivers.gcp import GcpDriverConfig
from qlrf.remediation.drivers.gcp_instance import GcpPlanDriver
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from qlrf.remediation.policy import RemediationPolicy
from qlrf.remediation.service import plan_decision, run_approved
from tests.fakes.azure_fake import start_azure_fake
from tests.fakes.fixtures import azure_fixture, gcp_fixture
from tests.fakes.gcp_fake import start_gcp_fake
from tests.remediation.support import NOW, Clock, sqlite_task_store

DAY = "2026-11-28"
pytestmark = pytest.mark.slow  # loopback HTTPS servers


def policy(owner: str = "team-web") -> RemediationPolicy:
    base = RemediationPolicy.defaults().model_dump(mode="json")
    base["compliance"] = {"tag_defaults": [{"match": {"site": "lon1"}, "tags": {"owner": owner}}]}
    return RemediationPolicy.model_validate(base)


def rows(platform: str, account: str, vms: list[tuple[str, str, str]], tags: dict | None = None,
         control: str = "RF-TAG-001"):
    """(compliance rows, inventory rows) for (asset id, name, region) VMs failing `control` in lon1/prod."""
    owner = "team-web" if control != "RF-TAG-001" else None
    compliance = [{"asset_id": a, "platform": platform, "account": account, "site": "lon1", "environment": "prod",
                   "owner": owner, "failed_controls": [control]} for a, _, _ in vms]
    inventory = [{"asset_id": a, "region": r, "name": n, "state": "running",
                  "tags": tags or {"site": "lon1", "environment": "prod"}} for a, n, r in vms]
    return compliance, inventory


def the_plan(platform, account, vms, owner: str = "team-web", control: str = "RF-TAG-001"):
    [plan] = build_compliance_plans(*rows(platform, account, vms, control=control), policy(owner), DAY).plans
    kind = "apply_tags" if control == "RF-TAG-001" else "detach_public_ip"
    assert plan.spec.compliance.type == kind and plan.metadata.platform == platform
    return plan


def approve_and_run(tmp_path, plan, driver):
    store, gate = sqlite_task_store(tmp_path, Clock(NOW)), Gate.embedded()
    task = store.propose(plan, "sensor:compliance", plan_decision(gate, plan, requested_by="sensor:compliance",
                                                                   fleet_size=100))
    store.approve(task.id, task.plan_hash, "alice", "owner tags for lon1 prod")
    outcome = run_approved(store, task.plan_hash, driver_for=lambda _p: driver, gate=gate, audit=store.audit,
                           actor="cli:alice", now=NOW)
    return store, task, outcome


# -- Azure ------------------------------------------------------------------------------------------
@pytest.fixture()
def azure():
    fx = azure_fixture(subscriptions=1, vms_per_sub=6, vmss_uniform_size=0, vmss_flex_members=0, snapshot_ratio=0)
    sub = next(iter(fx["subscriptions"]))
    vms = [v for v in fx["subscriptions"][sub]["virtualMachines"] if not v["properties"].get("virtualMachineScaleSet")][:3]
    for v in vms:
        v["tags"] = {"site": "lon1", "environment": "prod", "cost-centre": "cc-7"}
        v["tags"].pop("owner", None)
    with start_azure_fake(fx) as fake:
        fake.set_operation_polls(0)
        driver = AzurePlanDriver(AzureDriverConfig(
            azure=AzureConfig(base_url=fake.base_url, connection_verify=fake.ca_path, retry_total=0),
            credential=fake.credential(), lro_polling_interval=0.01))
        yield fake, sub, vms, driver


def azure_targets(vms):
    return [(v["properties"]["vmId"], v["name"], v["location"]) for v in vms]


def test_azure_tags_are_applied_after_approval_and_audited(azure, tmp_path):
    fake, sub, vms, driver = azure
    store, task, outcome = approve_and_run(tmp_path, the_plan("azure", sub, azure_targets(vms)), driver)
    assert outcome.state == "succeeded", outcome.reason
    for v in vms:
        assert fake.resource(v["id"])["tags"] == {"site": "lon1", "environment": "prod", "cost-centre": "cc-7",
                                                  "owner": "team-web"}
    trail = [r.kind for r in store.audit.records(subject=task.id)]
    assert trail.index("approval") < trail.index("execution_start") < trail.index("health_gate")
    assert store.audit.verify().ok


def test_azure_a_failed_health_gate_removes_only_the_added_tags(azure, tmp_path):
    fake, sub, vms, driver = azure
    plan = the_plan("azure", sub, azure_targets(vms))
    from qlrf.remediation.drivers.cloud_compliance import AzureComplianceDriver

    inner = AzureComplianceDriver(driver.groups)

    class SomeoneRemovesAnOwner:
        def __getattr__(self, name):
            return getattr(inner, name)

        def run_wave(self, plan, index):
            out = inner.run_wave(plan, index)
            first = fake.resource(vms[0]["id"])
            first["tags"] = {k: v for k, v in first["tags"].items() if k != "owner"} | {"note": "kept"}
            return out

    t = [0.0]  # the health gate's clock moves only when it sleeps: the prod timeout passes at once

    def sleep(seconds: float) -> None:
        t[0] += seconds

    result = execute_plan(plan, driver=SomeoneRemovesAnOwner(), gate=Gate.embedded(),
                          audit=sqlite_task_store(tmp_path, Clock(NOW)).audit,
                          approval={"plan_hash": plan.content_hash, "approver": "alice"},
                          requested_by="sensor:compliance", fleet_size=100, now=NOW, log=lambda _: None,
                          sleep=sleep, clock=lambda: t[0], poll_interval=300)
    assert result.state == "rolled_back", result.reason
    assert "owner" not in fake.resource(vms[0]["id"])["tags"]
    assert fake.resource(vms[0]["id"])["tags"]["note"] == "kept"  # what a person set since stays
    for v in vms:
        assert fake.resource(v["id"])["tags"].get("cost-centre") == "cc-7"


def test_azure_a_persons_value_is_never_overwritten(azure, tmp_path):
    fake, sub, vms, driver = azure
    plan = the_plan("azure", sub, azure_targets(vms))
    fake.resource(vms[1]["id"])["tags"]["owner"] = "team-db"  # set by a person after planning
    store, _, outcome = approve_and_run(tmp_path, plan, driver)
    assert outcome.state != "succeeded"
    assert "not overwriting a person's value" in outcome.reason
    assert fake.resource(vms[1]["id"])["tags"]["owner"] == "team-db"
    assert all("owner" not in fake.resource(v["id"])["tags"] for v in (vms[0], vms[2]))  # nothing was sent


# -- GCP --------------------------------------------------------------------------------------------
@pytest.fixture()
def gcp():
    fx = gcp_fixture(projects=1, instances_per_project=6, zonal_mig_size=0, regional_mig_size=0, snapshot_ratio=0)
    project = next(p for p, d in fx["projects"].items() if d["instances"])
    instances = [i for i in fx["projects"][project]["instances"]
                 if not any(x["key"] == "created-by" for x in i.get("metadata", {}).get("items", []))][:2]
    for n, i in enumerate(instances):
        i["labels"] = {"site": "lon1", "environment": "prod"}
        region = i["zone"].rsplit("/", 1)[-1].rsplit("-", 1)[0]
        nat = f"35.200.0.{10 + n}"
        i["networkInterfaces"][0]["accessConfigs"] = [{"kind": "compute#accessConfig", "type": "ONE_TO_ONE_NAT",
                                                       "name": "external-nat", "natIP": nat, "networkTier": "PREMIUM"}]
        if n == 0:  # the first one's address is static (reserved to the project); the second one's ephemeral
            fx["projects"][project].setdefault("addresses", []).append(
                {"kind": "compute#address", "name": f"{i['name']}-ip", "address": nat, "addressType": "EXTERNAL",
                 "status": "IN_USE", "users": [i["selfLink"]], "networkTier": "PREMIUM",
                 "region": f"https://www.googleapis.com/compute/v1/projects/{project}/regions/{region}"})
    with start_gcp_fake(fx) as fake:
        fake.set_operation_polls(0)
        driver = GcpPlanDriver(GcpDriverConfig(gcp=GcpConfig(api_endpoint=fake.base_url,
                                                             credentials=AnonymousCredentials()),
                                               operation_poll_initial=0.01, operation_poll_maximum=0.05))
        yield fake, project, instances, driver


def gcp_targets(instances):
    return [(i["id"], i["name"], i["zone"].rsplit("/", 1)[-1].rsplit("-", 1)[0]) for i in instances]


def test_gcp_labels_are_applied_with_the_fingerprint_and_audited(gcp, tmp_path):
    fake, project, instances, driver = gcp
    fingerprints = {i["name"]: i["labelFingerprint"] for i in instances}
    store, task, outcome = approve_and_run(tmp_path, the_plan("gcp", project, gcp_targets(instances)), driver)
    assert outcome.state == "succeeded", outcome.reason
    for i in instances:
        assert i["labels"] == {"site": "lon1", "environment": "prod", "owner": "team-web"}
        assert i["labelFingerprint"] != fingerprints[i["name"]]
    assert store.audit.verify().ok


def test_gcp_an_invalid_label_value_and_a_public_ip_detach_are_refused_before_any_call(gcp, tmp_path):
    from qlrf.remediation.drivers import DriverError
    from qlrf.remediation.drivers.cloud_compliance import GcpComplianceDriver

    fake, project, instances, driver = gcp
    bad = the_plan("gcp", project, gcp_targets(instances), owner="Team Web")
    with pytest.raises(DriverError, match="owner='Team Web' is not a valid GCE label"):
        GcpComplianceDriver(driver.groups).prepare(bad)
    detach = the_plan("gcp", project, gcp_targets(instances[1:]), control="RF-NET-001")
    with pytest.raises(DriverError, match="external IP 35.200.0.11 is ephemeral"):
        GcpDetachDriver(driver.groups).prepare(detach)
    assert all("owner" not in i["labels"] for i in instances)
    assert instances[1]["networkInterfaces"][0]["accessConfigs"][0]["natIP"] == "35.200.0.11"


def test_gcp_a_static_external_ip_is_detached_after_approval_and_given_back_on_rollback(gcp, tmp_path):
    fake, project, instances, driver = gcp
    nic = instances[0]["networkInterfaces"][0]
    store, task, outcome = approve_and_run(tmp_path, the_plan("gcp", project, gcp_targets(instances[:1]),
                                                              control="RF-NET-001"), driver)
    assert outcome.state == "succeeded", outcome.reason
    assert not nic.get("accessConfigs")
    assert fake.state.fixture["projects"][project]["addresses"][0]["status"] == "RESERVED"  # still the project's
    plan = task.plan()
    undo = GcpDetachDriver(driver.groups)
    undo.prepare(plan)  # nothing attached now: nothing to detach
    undo.restore({"state": {instances[0]["id"]: {**undo.state[instances[0]["id"]], "nic": "nic0",
                                                 "access_config": "external-nat", "nat_ip": "35.200.0.10",
                                                 "tier": "PREMIUM"}}, "changed": [instances[0]["id"]]})
    assert undo.rollback(plan, [0])["restored"] == [instances[0]["id"]]
    assert nic["accessConfigs"][0]["natIP"] == "35.200.0.10"  # the very same address is back


# -- vSphere ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vsphere():
    from pyVmomi import vim

    from qlrf.inventory.connectors.vsphere import VcenterConfig
    from tests.servers.vcsim import retrieve_vms, start_vcsim

    with start_vcsim(vms=3) as server:
        si = server.connect()
        vms = sorted(retrieve_vms(si, ["name", "config.instanceUuid"]), key=lambda r: r["name"])[:2]
        cfm = si.RetrieveContent().customFieldsManager
        keys = {n: cfm.AddCustomFieldDef(name=n, moType=vim.VirtualMachine).key for n in ("site", "environment")}
        for row in vms:
            cfm.SetField(entity=row["obj"], key=keys["site"], value="lon1")
            cfm.SetField(entity=row["obj"], key=keys["environment"], value="prod")
        vc = VcenterConfig(host=server.host, port=server.port, user=server.user, password=server.password,
                           protocol=server.protocol, verify_tls=False)
        yield si, vc, vms


def attributes(si, vm) -> dict[str, str]:
    from tests.servers.vcsim import custom_values

    names = {f.key: f.name for f in si.RetrieveContent().customFieldsManager.field or ()}
    return {k: v for k, v in custom_values(vm.customValue, names).items() if v}


def test_vsphere_owner_attribute_is_set_then_rolled_back_to_empty(vsphere, tmp_path):
    from qlrf.remediation.drivers.cloud_compliance import VsphereComplianceDriver
    from qlrf.remediation.drivers.vsphere import VsphereDriver, VsphereDriverConfig

    si, vc, vms = vsphere
    plan = the_plan("vsphere", vc.label, [(r["config.instanceUuid"], r["name"], "DC0") for r in vms])
    platform_driver = VsphereDriver(VsphereDriverConfig(vcenters=[vc], poll_interval=0.05))
    store, task, outcome = approve_and_run(tmp_path, plan, platform_driver)  # run_approved picks the compliance driver
    assert outcome.state == "succeeded", outcome.reason
    for r in vms:  # the owner field did not exist: defined, then set
        assert attributes(si, r["obj"]) == {"site": "lon1", "environment": "prod", "owner": "team-web"}
    assert store.audit.verify().ok
    driver = VsphereComplianceDriver(platform_driver)  # a later run's rollback, from the journal's checkpoint
    driver.restore({"state": {r["config.instanceUuid"]: {"vcenter": vc.label, "name": r["name"], "moid": r["moid"],
                                                         "added": ["owner"]} for r in vms},
                    "changed": [r["config.instanceUuid"] for r in vms]})
    undo = driver.rollback(plan, [0, 1])
    assert sorted(undo["restored"]) == sorted(r["config.instanceUuid"] for r in vms)
    for r in vms:  # vSphere cannot delete a custom value: empty, which discovery reads as absent
        assert attributes(si, r["obj"]) == {"site": "lon1", "environment": "prod"}
