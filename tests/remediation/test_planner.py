"""The planner: findings from a drift partition, and valid, deterministic patch plans from them."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from qlrf.remediation.findings import Finding, findings_from_partition
from qlrf.remediation.gate import gate_request
from qlrf.remediation.planner import build_plan, build_plans, current_golden, plan_waves, risk_level
from qlrf.remediation.plans import parse_plan
from qlrf.remediation.policy import RemediationPolicy, RemediationPolicyError
from qlrf.scoring import drift

DAY = "2026-11-27"
SEVERITY = {"current": "none", "behind": "high", "revoked": "critical", "unknown": "high", "unmanaged": "medium"}
AMI = {  # (version, region) -> AMI
    ("1.0.0", "eu-west-1"): "ami-0000000000000a100", ("1.0.0", "us-east-1"): "ami-0000000000000b100",
    ("1.5.0", "eu-west-1"): "ami-0000000000000a150", ("1.5.0", "us-east-1"): "ami-0000000000000b150",
    ("2.0.0", "eu-west-1"): "ami-0000000000000a200", ("2.0.0", "us-east-1"): "ami-0000000000000b200",
    ("2.1.0", "eu-west-1"): "ami-0000000000000a210", ("2.1.0", "us-east-1"): "ami-0000000000000b210",
}


def registry() -> pa.Table:
    """ubuntu: 1.0.0 prod, 1.5.0 prod but revoked, 2.0.0 prod (current for prod), 2.1.0 dev only."""
    rows = []
    for version, rank, channel, revoked in (("1.0.0", 1, "prod", False), ("1.5.0", 2, "prod", True),
                                            ("2.0.0", 3, "prod", False), ("2.1.0", 4, "dev", False)):
        for region in ("eu-west-1", "us-east-1"):
            rows.append({"family": "ubuntu-22.04", "version": version, "version_rank": rank, "channel": channel,
                         "revoked": revoked, "platform": "aws", "region": region, "image_ref": AMI[(version, region)]})
        rows.append({"family": "ubuntu-22.04", "version": version, "version_rank": rank, "channel": channel,
                     "revoked": revoked, "platform": "azure", "region": "*",
                     "image_ref": f"Canonical:ubuntu:22_04:{version}"})
    return pa.Table.from_pylist(rows)


def vm(asset_id, status, *, site="lon1", env="prod", region="eu-west-1", group=None, state="running", platform="aws"):
    version = {"current": "2.0.0", "behind": "1.0.0", "revoked": "1.5.0"}.get(status)
    ref = {"unknown": "ami-0000000000000dead", "unmanaged": None}.get(status, AMI.get((version, region)))
    if platform == "azure" and version:
        ref = f"Canonical:ubuntu:22_04:{version}"
    return {"asset_id": asset_id, "platform": platform, "account": "111111111111", "region": region, "site": site,
            "environment": env, "owner": "web", "group": group, "state": state, "image_ref": ref,
            "family": "ubuntu-22.04" if version else None, "image_version": version, "image_channel": "prod",
            "current_version": "2.0.0" if version else None, "versions_behind": None, "days_behind": None,
            "status": status, "severity": SEVERITY[status]}


def partition() -> pa.Table:
    rows = [
        # lon1 prod: breaches (score well above 30); a 4-VM ASG "web" in eu-west-1 with 2 members behind,
        # instances behind in two regions, one revoked, one unknown (not a target), one terminated (not a target).
        vm("i-001", "behind", group="web"), vm("i-002", "behind", group="web"),
        vm("i-003", "current", group="web"), vm("i-004", "current", group="web"),
        vm("i-010", "behind"), vm("i-011", "revoked"), vm("i-012", "unknown"), vm("i-013", "behind", state="terminated"),
        vm("i-020", "behind", region="us-east-1"), vm("i-021", "behind", region="us-east-1"),
        vm("i-030", "current"),
        # fra1 dev: below 60 but one revoked image running.
        vm("i-100", "revoked", site="fra1", env="dev"), vm("i-101", "behind", site="fra1", env="dev"),
        *[vm(f"i-1{n:02d}", "current", site="fra1", env="dev") for n in range(10, 20)],
        # nyc1 staging: clean.
        *[vm(f"i-2{n:02d}", "current", site="nyc1", env="staging") for n in range(5)],
        # no environment tag: never planned.
        vm("i-300", "revoked", site="nyc1", env="unknown"),
    ]
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="module")
def policy() -> RemediationPolicy:
    return RemediationPolicy.load()


@pytest.fixture(scope="module")
def findings(policy) -> list[Finding]:
    vm_drift = partition()
    return findings_from_partition(drift.drift_scores(vm_drift), vm_drift, policy, DAY)


def test_policy_file_defaults(policy, tmp_path):
    assert policy.thresholds() == {"dev": 60.0, "staging": 45.0, "prod": 30.0}
    assert [policy.for_env(e).autonomy_mode for e in ("dev", "staging", "prod")] == ["full_auto", "canary_only", "canary_only"]
    assert policy.revoked_image_always_breaches is True
    window = policy.for_env("prod").maintenance_window
    assert window.days == ["sat", "sun"] and (window.start, window.end) == (time(22), time(4))
    assert policy.for_env("dev").maintenance_window is None and policy.for_env("staging").maintenance_window is None
    assert RemediationPolicy.defaults() == policy
    partial = tmp_path / "p.yaml"
    partial.write_text("environments:\n  staging:\n    drift_threshold: 20\n")
    assert RemediationPolicy.load(partial).thresholds() == {"dev": 60.0, "staging": 20.0, "prod": 30.0}
    partial.write_text("environments:\n  prod:\n    autonomy_mode: full_auto\n")
    with pytest.raises(RemediationPolicyError, match="production is never full_auto"):
        RemediationPolicy.load(partial)
    partial.write_text("environments:\n  dev:\n    canary_percent: 0\n")
    with pytest.raises(RemediationPolicyError, match=r"p.yaml: invalid remediation policy: environments.dev.canary_percent"):
        RemediationPolicy.load(partial)
    with pytest.raises(RemediationPolicyError, match="no remediation policy for environment 'unknown'"):
        policy.for_env("unknown")


def test_findings_breach_and_revoked_below_threshold(findings):
    assert [(f.kind, f.scope) for f in findings] == [
        ("revoked_image", "aws/fra1/dev"),
        ("drift_threshold", "aws/lon1/prod"),
    ]
    revoked, breach = findings
    assert breach.asset_ids == ("i-001", "i-002", "i-010", "i-011", "i-020", "i-021")
    assert breach.vms == 11 and breach.revoked == 1 and breach.threshold == 30.0 and breach.drift_score > 30
    assert breach.day == DAY
    assert revoked.asset_ids == ("i-100",)  # the behind VM of a scope below its threshold is no target
    assert revoked.drift_score < 60 and revoked.revoked == 1


def test_fingerprint_is_stable_and_content_bound(findings, policy):
    vm_drift = partition()
    again = findings_from_partition(drift.drift_scores(vm_drift), vm_drift, policy, DAY)
    assert [f.fingerprint() for f in again] == [f.fingerprint() for f in findings]
    fp = findings[1].fingerprint()
    assert len(fp) == 64 and int(fp, 16) >= 0
    assert Finding.from_dict(findings[1].to_dict()) == findings[1]
    moved = Finding.from_dict({**findings[1].to_dict(), "asset_ids": list(findings[1].asset_ids[:-1])})
    assert moved.fingerprint() != fp
    assert Finding.from_dict({**findings[1].to_dict(), "day": "2026-11-28"}).fingerprint() != fp


def test_plans_split_per_aws_region_and_validate(findings, policy):
    breach = findings[1]
    facts = [{"account": "111111111111", "region": "eu-west-1", "group_name": "web", "desired_capacity": 6,
              "launch_template_resolved_version": 7}]
    plans = build_plans(breach, partition(), registry(), policy, scaling_groups=facts)
    assert [p.metadata.id for p in plans] == [
        f"rp-{breach.fingerprint()[:12]}-ubuntu-22.04-eu-west-1",
        f"rp-{breach.fingerprint()[:12]}-ubuntu-22.04-us-east-1",
    ]
    eu, us = plans
    for plan in plans:
        again = parse_plan(plan.to_yaml(), plan.metadata.id)  # validates, hash matches
        assert again.content_hash == plan.content_hash == plan.compute_hash()
        meta = plan.metadata
        assert (meta.environment, meta.platform, meta.site, meta.risk_level, meta.autonomy_mode) == (
            "prod", "aws", "lon1", "high", "canary_only")
        assert meta.created_at == datetime(2026, 11, 27, tzinfo=UTC)
        assert meta.finding["fingerprint"] == breach.fingerprint() and meta.finding["kind"] == "drift_threshold"
        assert plan.spec.to_image.version == "2.0.0"  # prod channel: not the dev-only 2.1.0, never the revoked 1.5.0
        assert plan.spec.maintenance_window.days == ["sat", "sun"] and plan.spec.max_unavailable == 1
        assert plan.spec.health_gate.min_healthy_percent == 100 and plan.spec.health_gate.timeout_seconds == 1200
        waves = plan.spec.waves
        assert waves[0].canary and not any(w.canary for w in waves[1:]) and len(waves) <= 5
        waved = [i for w in waves for i in w.instances]
        assert sorted(waved) == sorted(t.asset_id for t in plan.spec.targets.instances)
        for group in plan.spec.targets.groups:
            assert sum(w.group_percent for w in waves if group.name in w.groups) == 100

    assert [(g.kind, g.name, g.region, g.size) for g in eu.spec.targets.groups] == [("asg", "web", "eu-west-1", 6)]
    assert [t.asset_id for t in eu.spec.targets.instances] == ["i-010", "i-011"]
    assert eu.spec.targets.count() == 8
    assert eu.spec.to_image.image_ref == "ami-0000000000000a200"
    assert sorted(i.image_ref for i in eu.spec.from_images) == ["ami-0000000000000a100", "ami-0000000000000a150"]
    assert (eu.spec.rollback.strategy, eu.spec.rollback.launch_template_version) == ("previous_launch_template_version", "7")
    assert [w.name for w in eu.spec.waves] == ["canary", "batch-1", "batch-2", "batch-3", "batch-4"]
    assert [eu.wave_targets(i) for i in range(5)] == [2, 3, 2, 2, 2]  # ceil(6 x 5%) + 1, then ceil(6 x 24%) [+ 1]

    assert us.spec.targets.groups == [] and [t.asset_id for t in us.spec.targets.instances] == ["i-020", "i-021"]
    assert us.spec.to_image.image_ref == "ami-0000000000000b200"
    assert (us.spec.rollback.strategy, us.spec.rollback.image_ref) == ("previous_image", "ami-0000000000000b100")
    assert [len(w.instances) for w in us.spec.waves] == [1, 1]  # empty batches dropped

    rebuilt = build_plans(breach, partition(), registry(), policy, scaling_groups=facts)
    assert [p.content_hash for p in rebuilt] == [p.content_hash for p in plans]
    without_facts = build_plans(breach, partition(), registry(), policy)[0]
    assert without_facts.spec.targets.groups[0].size == 4  # the group's VMs in the partition
    assert without_facts.spec.rollback.launch_template_version is None
    with pytest.raises(ValueError, match="needs 2 plans"):
        build_plan(breach, partition(), registry(), policy)


def test_revoked_image_plan_in_dev(findings, policy):
    plan = build_plan(findings[0], partition(), registry(), policy, now=datetime(2026, 11, 27, 12, 30, tzinfo=UTC))
    assert [t.asset_id for t in plan.spec.targets.instances] == ["i-100"]
    assert plan.metadata.risk_level == "high"  # a revoked image is high risk, even in dev
    assert plan.metadata.autonomy_mode == "full_auto" and plan.spec.maintenance_window is None
    assert plan.metadata.created_at == datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
    assert plan.spec.from_images[0].version == "1.5.0" and plan.spec.to_image.version == "2.1.0"  # dev channel
    assert [(w.name, w.instances) for w in plan.spec.waves] == [("canary", ["i-100"])]
    assert plan.spec.health_gate.min_healthy_percent == 80


def test_azure_wildcard_image_is_one_plan_across_regions(policy):
    rows = [vm(f"vm-{n}", "behind", region=region, platform="azure", group="ss1" if n < 2 else None)
            for n, region in enumerate(["westeurope", "westeurope", "northeurope", "eastus"])]
    table = pa.Table.from_pylist(rows)
    (finding,) = findings_from_partition(drift.drift_scores(table), table, policy, DAY)
    plan = build_plan(finding, table, registry(), policy)
    assert plan.metadata.id == f"rp-{finding.fingerprint()[:12]}-ubuntu-22.04"
    assert [(g.kind, g.name, g.size) for g in plan.spec.targets.groups] == [("vmss", "ss1", 2)]
    assert sorted(t.region for t in plan.spec.targets.instances) == ["eastus", "northeurope"]
    assert plan.spec.to_image.image_ref == "Canonical:ubuntu:22_04:2.0.0"
    assert plan.spec.rollback.strategy == "previous_image"


def test_vsphere_groups_stay_instances(policy):
    reg = pa.Table.from_pylist([
        {"family": "rhel-9", "version": v, "version_rank": r, "channel": "prod", "revoked": False,
         "platform": "vsphere", "region": "*", "image_ref": f"tmpl-rhel-9-{v}"} for v, r in (("1.0", 1), ("2.0", 2))
    ])
    rows = []
    for n in range(3):
        row = vm(f"vm-{n}", "behind", platform="vsphere", group="cluster-a", region="dc-lon1")
        rows.append({**row, "family": "rhel-9", "image_version": "1.0", "image_ref": "tmpl-rhel-9-1.0"})
    table = pa.Table.from_pylist(rows)
    (finding,) = findings_from_partition(drift.drift_scores(table), table, policy, DAY)
    plan = build_plan(finding, table, reg, policy)
    assert plan.spec.targets.groups == [] and len(plan.spec.targets.instances) == 3
    assert plan.spec.rollback.strategy == "restore_clone" and plan.spec.to_image.image_ref == "tmpl-rhel-9-2.0"


def test_missing_golden_image_is_skipped_with_a_reason(findings, policy):
    only_eu = registry().filter(pc.not_equal(registry().column("region"), "us-east-1"))
    skipped: list[str] = []
    plans = build_plans(findings[1], partition(), only_eu, policy, skipped=skipped)
    assert [p.metadata.finding["region"] for p in plans] == ["eu-west-1"]
    assert skipped == [
        "VM i-020: no current golden ubuntu-22.04 image for aws/us-east-1 at channel prod",
        "VM i-021: no current golden ubuntu-22.04 image for aws/us-east-1 at channel prod",
    ]


@pytest.mark.parametrize(
    ("env", "targets", "revoked", "expected"),
    [("dev", 10, False, "low"), ("dev", 101, False, "medium"), ("dev", 5, True, "high"), ("staging", 3, False, "medium"),
     ("staging", 1001, False, "high"), ("prod", 1, False, "high"), ("prod", 1001, False, "critical")],
)
def test_risk_rule(env, targets, revoked, expected):
    assert risk_level(env, targets, revoked) == expected


def test_waves_cover_every_instance_once(policy):
    ids = [f"i-{n:03d}" for n in range(23)]
    waves = plan_waves(ids, [], policy.for_env("staging"))  # canary 10%, 3 batches
    assert [len(w.instances) for w in waves] == [3, 7, 7, 6]
    assert [i for w in waves for i in w.instances] == ids


def test_current_golden_follows_the_channel():
    assert current_golden(registry(), "aws", "prod")["ubuntu-22.04"].version == "2.0.0"
    assert current_golden(registry(), "aws", "staging")["ubuntu-22.04"].version == "2.0.0"
    assert current_golden(registry(), "aws", "dev")["ubuntu-22.04"].version == "2.1.0"
    assert current_golden(registry(), "gcp", "prod") == {}


def test_gate_request_is_a_well_formed_gate_input(findings, policy):
    from qlrf.remediation.gate import Gate

    plan = build_plan(findings[0], partition(), registry(), policy)
    request = gate_request(plan, requested_by="sensor:drift_breach", fleet_size=200, now=datetime(2026, 11, 28, 23, tzinfo=UTC))
    assert request["plan_hash"] == plan.content_hash and request["targets"] == 1 and request["drift_delta"] == 0.5
    decision = Gate.embedded().decide(request)
    assert decision.requires_approval and not decision.allow and decision.reasons == ()
    assert yaml.safe_load(plan.to_yaml())["metadata"]["risk_level"] == "high"



def test_findings_can_be_limited_to_a_site_and_environment_in_the_query(findings, policy):
    # The AI path asks for one scope: the same findings as filtering the whole partition afterwards.
    vm_drift = partition()
    [wanted] = [f for f in findings if f.site == "lon1" and f.environment == "prod"]
    assert len(findings) == 2
    assert findings_from_partition(drift.drift_scores(vm_drift), vm_drift, policy, DAY,
                                   site="lon1", environment="prod") == [wanted]
    assert findings_from_partition(drift.drift_scores(vm_drift), vm_drift, policy, DAY, site="nowhere") == []
