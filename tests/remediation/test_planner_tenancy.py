"""Patch plans and tenancy (issue 14): one plan never spans two organisations; metadata.org/project are
set from the targets and left out of the serialised plan when unset (pre-tenancy plans keep their hash)."""

from __future__ import annotations

import pyarrow as pa

from qlrf.remediation.findings import findings_from_partition
from qlrf.remediation.planner import build_plans
from qlrf.remediation.plans import PatchPlan
from qlrf.remediation.policy import RemediationPolicy
from qlrf.scoring import drift
from qlrf.tenancy import model

DAY = "2026-11-27"
OLD, GOLDEN = "ami-0000000000000old", "ami-000000000golden"
REGISTRY = pa.Table.from_pylist([
    {"family": "debian-12", "version": v, "version_rank": r, "channel": "prod", "revoked": False, "platform": "aws",
     "region": "*", "image_ref": ref} for v, r, ref in (("1", 1, OLD), ("2", 2, GOLDEN))])


def _row(n: int, account: str) -> dict:
    return {"asset_id": f"i-{n:04d}", "name": f"vm{n}", "platform": "aws", "account": account, "region": "eu-west-2",
            "site": "lon1", "environment": "dev", "owner": "web", "group": None, "state": "running", "image_ref": OLD,
            "family": "debian-12", "image_version": "1", "image_channel": "prod", "current_version": "2",
            "versions_behind": 1, "days_behind": 40, "status": "behind", "severity": "high"}


def _plans(rows: list[dict]) -> list[PatchPlan]:
    table = pa.Table.from_pylist(rows)  # a pre-1.1 vm_drift (no org column): the planner fills it from the mapping
    policy = RemediationPolicy.load()
    (finding,) = findings_from_partition(drift.drift_scores(table), table, policy, DAY)
    return build_plans(finding, table, REGISTRY, policy)


def test_a_finding_over_two_organisations_yields_one_plan_per_organisation():
    tenancy = model.load()
    rows = [_row(1, "111111111111"), _row(2, "333333333333"), _row(3, "111111111111"), _row(4, "333333333333")]
    plans = _plans(rows)
    assert sorted(p.metadata.org for p in plans) == ["acme", "initech"]
    for plan in plans:
        accounts = {t.account for t in plan.spec.targets.instances}
        assert {tenancy.resolve("aws", a)[0] for a in accounts} == {plan.metadata.org}
        assert plan.metadata.id.endswith(f"-{plan.metadata.org}")
    by_org = {p.metadata.org: p for p in plans}
    assert by_org["acme"].metadata.project == "production" and by_org["initech"].metadata.project == "development"
    assert sorted(t.asset_id for t in by_org["acme"].spec.targets.instances) == ["i-0001", "i-0003"]
    assert "org: acme" in by_org["acme"].to_yaml()


def test_one_organisation_keeps_the_plan_id_and_an_unmapped_scope_is_unassigned_not_a_real_org():
    (plan,) = _plans([_row(1, "111111111111"), _row(2, "111111111111")])
    assert plan.metadata.org == "acme" and not plan.metadata.id.endswith("-acme")
    (stray,) = _plans([_row(1, "999999999999")])
    assert (stray.metadata.org, stray.metadata.project) == ("unassigned", "unassigned")


def test_unset_org_is_left_out_so_existing_plan_hashes_stay_stable():
    (plan,) = _plans([_row(1, "111111111111")])
    legacy = plan.model_copy(update={"metadata": plan.metadata.model_copy(update={"org": None, "project": None})}).sealed()
    body = legacy.model_dump(mode="json")
    assert "org" not in body["metadata"] and "project" not in body["metadata"]
    # A stored pre-tenancy plan (no org keys) parses and re-hashes to the hash it was approved with.
    reparsed = PatchPlan.model_validate(body)
    assert reparsed.compute_hash() == legacy.content_hash
    assert plan.sealed().content_hash != legacy.content_hash  # the org is part of what an approver approves
