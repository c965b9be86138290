"""Compliance remediation (issue 12 item 6): apply_tags and detach_public_ip plans from the failed controls,
through the same gate, queue, approval, audit and execution path; executed with boto3 against moto."""

from __future__ import annotations

import boto3
import pytest

from qlrf.remediation.compliance_plans import build_compliance_plans
from qlrf.remediation.drivers.aws import AwsDriver, AwsDriverConfig
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from qlrf.remediation.plans import parse_plan
from qlrf.remediation.policy import RemediationPolicy
from qlrf.remediation.queue import ranked_queue
from qlrf.remediation.service import PlanningOutcome, plan_decision, propose_plans, run_approved
from tests.remediation import test_aws_driver
from tests.remediation.support import NOW, Clock, sqlite_task_store

DAY = "2026-11-28"
moto = test_aws_driver.moto  # the same moto server fixture (module scope), not a copy of it


def policy() -> RemediationPolicy:
    base = RemediationPolicy.defaults().model_dump(mode="json")
    base["compliance"] = {"tag_defaults": [
        {"match": {"site": "lon1", "environment": "prod", "account": "123456789012"}, "tags": {"owner": "team-web"}},
        {"match": {"account": "123456789012", "region": "eu-west-1"}, "tags": {"site": "lon1"}},
    ]}
    return RemediationPolicy.model_validate(base)


def vm(asset_id: str, *, env: str = "prod", site: str = "lon1", owner: str | None = None, failed=(), account="123456789012",
       tags: dict | None = None) -> tuple[dict, dict]:
    compliance = {"asset_id": asset_id, "platform": "aws", "account": account, "site": site, "environment": env,
                  "owner": owner, "failed_controls": list(failed)}
    inventory = {"asset_id": asset_id, "region": "eu-west-1", "name": f"web-{asset_id[-3:]}", "state": "running",
                 "tags": tags if tags is not None else {"site": site, "environment": env}}
    return compliance, inventory


def plans_for(vms: list[tuple[dict, dict]]):
    return build_compliance_plans([c for c, _ in vms], [i for _, i in vms], policy(), DAY)


def test_plans_per_type_and_scope_with_what_cannot_be_derived_held():
    result = plans_for([
        vm("i-0000000000000a001", failed=["RF-TAG-001"]),  # owner from the lon1/prod default
        vm("i-0000000000000a002", failed=["RF-TAG-001"], account="999999999999"),  # no default for this account
        vm("i-0000000000000a003", failed=["RF-NET-001"]),
        vm("i-0000000000000a004", env="dev", owner="team-x", failed=["RF-NET-001"]),  # dev: not this control's scope
        vm("i-0000000000000a005", env="unknown", owner="team-x", failed=["RF-TAG-001"]),
        vm("i-0000000000000a006", site="unassigned", owner="team-x", failed=["RF-TAG-001"], tags={"environment": "prod"}),
        vm("i-0000000000000a007", failed=["RF-IMG-003"]),  # re-imaging fixes this one
    ])
    by_type = {(p.spec.compliance.type, p.metadata.site): p for p in result.plans}
    assert sorted(by_type) == [("apply_tags", "lon1"), ("apply_tags", "unassigned"), ("detach_public_ip", "lon1")]
    tags = by_type[("apply_tags", "lon1")].spec.compliance
    assert [(t.asset_id, t.tags) for t in tags.tags] == [("i-0000000000000a001", {"owner": "team-web"})]
    assert tags.tags[0].derived_from["owner"].startswith("policy:compliance.tag_defaults[0]")
    assert set(tags.held) == {"i-0000000000000a002", "i-0000000000000a005"}  # listed for a person, never guessed
    assert "no owner" in result.held["i-0000000000000a002"] and "no environment" in result.held["i-0000000000000a005"]
    site_fix = by_type[("apply_tags", "unassigned")].spec.compliance.tags[0]
    # the site from the account/region default; the owner the mapping found under another key, written canonically
    assert site_fix.tags == {"owner": "team-x", "site": "lon1"} and site_fix.derived_from["owner"] == "tag mapping"
    detach = by_type[("detach_public_ip", "lon1")]
    assert [t.asset_id for t in detach.spec.targets.instances] == ["i-0000000000000a003"]
    assert detach.metadata.risk_level == "high" and detach.spec.rollback.strategy == "reattach_public_ip"
    assert detach.spec.to_image is None and detach.spec.plan_type == "detach_public_ip"
    assert parse_plan(detach.to_yaml()).content_hash == detach.content_hash  # hash-bound like any plan
    again = plans_for([vm("i-0000000000000a003", failed=["RF-NET-001"])])
    assert again.plans[0].content_hash == detach.content_hash  # same facts, same plan


def test_prod_detach_always_waits_for_a_person_and_tags_do_not_in_dev():
    gate = Gate.embedded()
    [detach] = plans_for([vm("i-0000000000000a003", failed=["RF-NET-001"])]).plans
    decision = plan_decision(gate, detach, requested_by="sensor:compliance", fleet_size=100)
    assert decision["requires_approval"] and not decision["allow"] and not decision["canary_allowed"]
    assert "detaching a public IP from a production VM always needs a human approval" in decision["approval_reasons"]
    held = plans_for([vm("i-0000000000000b001", env="dev", failed=["RF-TAG-001"])])
    assert held.plans == [] and "no owner" in held.held["i-0000000000000b001"]  # no owner default for dev
    base = policy().model_dump(mode="json")
    base["compliance"]["tag_defaults"].append({"match": {"environment": "dev"}, "tags": {"owner": "team-dev"}})
    [dev] = build_compliance_plans(*[[x] for x in vm("i-0000000000000b001", env="dev", failed=["RF-TAG-001"])],
                                   RemediationPolicy.model_validate(base), DAY).plans
    dev_decision = plan_decision(gate, dev, requested_by="sensor:compliance", fleet_size=100)
    assert dev_decision["allow"] and not dev_decision["deny"]


def test_one_open_plan_per_scope_and_type_in_the_queue(tmp_path):
    store, gate = sqlite_task_store(tmp_path, Clock(NOW)), Gate.embedded()
    first = plans_for([vm("i-0000000000000a003", failed=["RF-NET-001"]), vm("i-0000000000000a001", failed=["RF-TAG-001"]),
                       vm("i-0000000000000a008", failed=["RF-TAG-001"])])  # two VMs: a later wave waits for a person
    states = []
    for plan in first.plans:  # each plan is its scope x type's one proposal (as compliance_service proposes them)
        outcome = PlanningOutcome(None, [])
        propose_plans(store, gate, [plan], outcome, day=DAY, requested_by="sensor:compliance", fleet_size=100,
                      limits=policy().queue)
        states += [p.state for p in outcome.proposed]
    assert states == ["pending_approval", "pending_approval"]
    newer = build_compliance_plans(*zip(*[vm("i-0000000000000a003", failed=["RF-NET-001"]),
                                          vm("i-0000000000000a009", failed=["RF-NET-001"])], strict=True),
                                   policy(), "2026-11-29").plans
    later = PlanningOutcome(None, [])
    propose_plans(store, gate, newer, later, day="2026-11-29", requested_by="sensor:compliance", fleet_size=100,
                  limits=policy().queue)
    queue = ranked_queue(store)
    assert len(queue) == 2  # the newer detach plan superseded the older one; the tag plan stays
    assert {e.task.plan_id.rsplit("-", 2)[-1] for e in queue} == {"tags", "ip"}
    old = store.by_hash(next(p for p in first.plans if p.spec.plan_type == "detach_public_ip").content_hash)
    assert old.state == "rejected" and "superseded" in old.reason


def seed(url: str) -> tuple[object, list[str], dict[str, str]]:
    """Three prod VMs in a subnet without auto-assigned public IPs: two behind Elastic IPs, none with an owner tag."""
    ec2 = boto3.client("ec2", region_name="eu-west-1", endpoint_url=url)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    run = ec2.run_instances(ImageId="ami-0a1b2c3d4e5f60708", MinCount=3, MaxCount=3, InstanceType="t3.micro", SubnetId=subnet,
                            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "site", "Value": "lon1"},
                                                                                      {"Key": "environment", "Value": "prod"}]}])
    ids = sorted(i["InstanceId"] for i in run["Instances"])
    eips = {}
    for iid in ids[:2]:
        alloc = ec2.allocate_address(Domain="vpc")
        ec2.associate_address(AllocationId=alloc["AllocationId"], InstanceId=iid)
        eips[iid] = alloc["PublicIp"]
    return ec2, ids, eips


def driver_for(url: str):
    return lambda platform: AwsDriver(AwsDriverConfig(endpoint_url=url, poll_interval=0.05, replace_timeout=20, max_attempts=2))


def public_ip(ec2, iid: str) -> str | None:
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0].get("PublicIpAddress")


@pytest.mark.slow
def test_moto_apply_tags_and_detach_public_ip_approve_execute_audit(moto, tmp_path):
    ec2, ids, eips = seed(moto)
    store, gate = sqlite_task_store(tmp_path, Clock(NOW)), Gate.embedded()
    rows = [vm(iid, failed=["RF-TAG-001", "RF-NET-001"] if iid in eips else ["RF-TAG-001"]) for iid in ids]
    plans = {p.spec.plan_type: p for p in plans_for(rows).plans}
    tasks = {}
    for kind, plan in plans.items():
        decision = plan_decision(gate, plan, requested_by="sensor:compliance", fleet_size=100)
        tasks[kind] = store.propose(plan, "sensor:compliance", decision)
        assert tasks[kind].state == "pending_approval", kind

    # an unapproved prod detach is refused by the gate before any call: the addresses stay
    detach = plans["detach_public_ip"]
    refused = execute_plan(detach, driver=driver_for(moto)("aws"), gate=gate, audit=store.audit,
                           requested_by="sensor:compliance", fleet_size=100, now=NOW, log=lambda _: None)
    assert refused.state == "blocked" and "approval" in refused.reason
    assert all(public_ip(ec2, iid) == ip for iid, ip in eips.items())

    for kind, task in tasks.items():
        store.approve(task.id, task.plan_hash, "alice", f"reviewed {kind}")
        outcome = run_approved(store, task.plan_hash, driver_for=driver_for(moto), gate=gate, audit=store.audit,
                               actor="cli:alice", now=NOW)
        assert outcome.state == "succeeded", (kind, outcome.reason)
        trail = kinds_of(store, task.id)
        assert trail.index("approval_requested") < trail.index("approval") < trail.index("execution_start")
        assert trail[-1] == "execution_end" and "health_gate" in trail

    for iid in ids:
        tags = {t["Key"]: t["Value"] for t in ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["Tags"]}
        assert tags["owner"] == "team-web" and tags["site"] == "lon1"
        assert public_ip(ec2, iid) is None
    check = store.audit.verify()
    assert check.ok, check.problems


def kinds_of(store, task_id: str) -> list[str]:
    return [r.kind for r in store.audit.records(subject=task_id)]


@pytest.mark.slow
def test_moto_detach_rolls_back_when_the_wave_fails_its_health_gate(moto, tmp_path):
    ec2, ids, eips = seed(moto)
    iid = next(iter(eips))
    [plan] = [p for p in plans_for([vm(iid, owner="team-web", failed=["RF-NET-001"])]).plans]
    base = driver_for(moto)("aws")

    class StopAfterDetach:
        """The real compliance path, with the VM stopped behind its back after the detach (a health failure)."""

        def __init__(self):
            from qlrf.remediation.drivers.aws_compliance import AwsComplianceDriver

            self.inner = AwsComplianceDriver(base)

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def run_wave(self, plan, index):
            out = self.inner.run_wave(plan, index)
            ec2.stop_instances(InstanceIds=[iid])
            return out

    t = [0.0]  # the health gate's clock moves only when it sleeps: the 1200 s prod timeout passes at once

    def sleep(seconds: float) -> None:
        t[0] += seconds

    result = execute_plan(plan, driver=StopAfterDetach(), gate=Gate.embedded(), audit=sqlite_task_store(tmp_path, Clock(NOW)).audit,
                          approval={"plan_hash": plan.content_hash, "approver": "alice"}, requested_by="sensor:compliance",
                          fleet_size=100, now=NOW, log=lambda _: None, sleep=sleep, clock=lambda: t[0], poll_interval=300)
    assert result.state == "rolled_back", result.reason
    assert public_ip(ec2, iid) == eips[iid]  # the same Elastic IP is back


@pytest.mark.slow
def test_cli_plans_a_days_compliance_fixes_from_the_warehouse(tmp_path, monkeypatch, capsys):
    import pyarrow as pa

    from qlrf.cli import main
    from qlrf.warehouse import Warehouse

    monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "wh"))
    for var in ("QLRF_POSTGRES_URL", "QLRF_OPA_URL", "QLRF_AUDIT_DIR", "QLRF_REMEDIATION_POLICY"):
        monkeypatch.delenv(var, raising=False)
    rows = [vm("i-0000000000000a003", owner="team-web", failed=["RF-NET-001"]),
            vm("i-0000000000000a002", failed=["RF-TAG-001"], account="999999999999")]
    rows += [vm(f"i-00000000000c{n:04d}", owner="team-web") for n in range(98)]  # the compliant rest of the fleet
    wh = Warehouse(str(tmp_path / "wh"))
    wh.write("vm_compliance", pa.Table.from_pylist([c for c, _ in rows]), DAY, "aws")
    inventory = [{**i, "tags": list(i["tags"].items())} for _, i in rows]
    wh.write("inventory", pa.Table.from_pylist(inventory, schema=pa.schema([
        ("asset_id", pa.string()), ("region", pa.string()), ("name", pa.string()), ("state", pa.string()),
        ("tags", pa.map_(pa.string(), pa.string()))])), DAY, "aws")
    from tests.tenancy.support import local_operator

    local_operator(monkeypatch, "operator", "operator@unassigned")
    assert main(["plan", "compliance", "--date", DAY]) == 0
    out = capsys.readouterr().out
    assert "held for a person: i-0000000000000a002: no owner" in out
    assert "detach-public-ip" in out and "queue: 1 pending task(s)" in out


@pytest.mark.slow
def test_moto_a_killed_compliance_run_is_rolled_back_from_the_journal(moto, tmp_path):
    """Ctrl-C as the second instance is about to be tagged: the next execution restores the
    compliance driver from the journal's checkpoint and removes exactly the tags the plan added."""
    from qlrf.remediation.journal import INTERRUPTED
    from qlrf.remediation.policy import JournalPolicy
    from qlrf.remediation.recovery import journal_for

    ec2, ids, _ = seed(moto)
    store, gate = sqlite_task_store(tmp_path, Clock(NOW)), Gate.embedded()
    [plan] = [p for p in plans_for([vm(iid, failed=["RF-TAG-001"]) for iid in ids]).plans]
    task = store.propose(plan, "sensor:compliance", plan_decision(gate, plan, requested_by="sensor:compliance", fleet_size=100))
    store.approve(task.id, task.plan_hash, "alice", "tags for prod")
    sent: list[str] = []

    class CtrlCOnSecondTag(AwsDriver):
        def _send(self, service, operation, target, params, perform, dry_result=None):
            if operation == "CreateTags":
                sent.append(target)
                if len(sent) == 2:
                    raise KeyboardInterrupt("Ctrl-C")
            return super()._send(service, operation, target, params, perform, dry_result)

    config = AwsDriverConfig(endpoint_url=moto, poll_interval=0.05, replace_timeout=20, max_attempts=2)
    kwargs = {"gate": gate, "audit": store.audit, "actor": "cli:bob", "now": NOW,
              "crash_policy": JournalPolicy(on_crash="rollback")}
    with pytest.raises(KeyboardInterrupt):
        run_approved(store, task.plan_hash, driver_for=lambda _p: CtrlCOnSecondTag(config), **kwargs)
    assert store.get(task.id).state == "running" and journal_for(store).unfinished(task.id).status == INTERRUPTED

    def tags(iid: str) -> dict[str, str]:
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}

    assert tags(sent[0])["owner"] == "team-web"  # the first tag landed before the interrupt
    outcome = run_approved(store, task.plan_hash, driver_for=driver_for(moto), **kwargs)
    assert outcome.state == "rolled_back", outcome.reason
    for iid in ids:
        assert "owner" not in tags(iid) and tags(iid)["site"] == "lon1"  # added keys gone, a person's tags kept
    recovery = store.audit.records(subject=task.id, kind="execution_recovery")[-1].data
    assert recovery["decision"] == "rollback", recovery
    assert store.audit.verify().ok
