"""Never change what a VM is (issue 12 item 7): a plan moves a VM only within its own image family.

A scaling group whose members run several families is not planned and is named for a person; every
target carries its from-family; the gate denies a plan whose from- and to-family differ; the plan's
title counts what the plan changes (whole groups by their size)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from qlrf.remediation.findings import findings_from_partition
from qlrf.remediation.gate import Gate, gate_request
from qlrf.remediation.planner import MIXED_GROUP, build_plans
from qlrf.remediation.policy import RemediationPolicy
from qlrf.scoring import drift
from tests.remediation.test_planner import DAY, registry, vm
from tests.sensors.support import make_plan


def debian(asset_id: str, group: str) -> dict:
    """A lon1 prod member on debian-12 (a family the registry has no golden image for here)."""
    row = vm(asset_id, "current", group=group)
    return {**row, "family": "debian-12", "image_ref": "ami-00000000000000deb", "image_version": "12.7"}


def estate() -> pa.Table:
    rows = [
        # "web": every member on ubuntu, two behind -> planned as a whole group of 4.
        vm("i-001", "behind", group="web"), vm("i-002", "behind", group="web"),
        vm("i-003", "current", group="web"), vm("i-004", "current", group="web"),
        # "mix": one ubuntu member behind, one debian member: never planned.
        vm("i-005", "behind", group="mix"), debian("i-006", "mix"),
        # "odd": one ubuntu member behind, one on an image with no family: never planned either.
        vm("i-007", "behind", group="odd"), vm("i-008", "unknown", group="odd"),
        vm("i-010", "behind"), vm("i-011", "revoked"),
        *[vm(f"i-0{n}", "current") for n in range(20, 24)],
    ]
    return pa.Table.from_pylist(rows)


@pytest.fixture(scope="module")
def plans_and_notes():
    policy = RemediationPolicy.load()
    table = estate()
    finding = next(f for f in findings_from_partition(drift.drift_scores(table), table, policy, DAY) if f.scope == "aws/lon1/prod")
    notes: list[str] = []
    return build_plans(finding, table, registry(), policy, skipped=notes), notes, finding


def test_a_group_of_several_families_is_not_planned_and_is_named(plans_and_notes):
    plans, notes, finding = plans_and_notes
    assert "i-005" in finding.asset_ids and "i-007" in finding.asset_ids  # drifted, yet not planned
    (plan,) = plans
    assert [g.name for g in plan.spec.targets.groups] == ["web"]
    mixed = [n for n in notes if n.startswith(MIXED_GROUP)]
    assert len(mixed) == 2
    assert mixed[0].startswith("mixed-family group mix (aws 111111111111/eu-west-1): its members run 2 image families "
                               "(debian-12, ubuntu-22.04); not planned")
    assert mixed[1].startswith("mixed-family group odd (aws 111111111111/eu-west-1): its members run 2 image families "
                               "((no family), ubuntu-22.04)")


def test_every_target_carries_its_own_family(plans_and_notes):
    plans, _, _ = plans_and_notes
    (plan,) = plans
    assert set(plan.spec.targets.from_families()) == {"ubuntu-22.04"} == {plan.spec.to_image.family}
    assert {i.family for i in plan.spec.from_images} == {"ubuntu-22.04"}
    request = gate_request(plan, requested_by="sensor:drift", fleet_size=100, window_is_open=True)
    assert (request["to_family"], request["from_families"]) == ("ubuntu-22.04", ["ubuntu-22.04"])


def test_the_title_counts_what_the_plan_changes(plans_and_notes):
    plans, _, _ = plans_and_notes
    (plan,) = plans
    assert plan.spec.targets.count() == 6  # the whole group of 4 + i-010 + i-011
    assert plan.metadata.reason.endswith(
        ": 6 VM(s) on ubuntu-22.04 in eu-west-1 -> 2.0.0: 1 whole group(s) of 4 VM(s) (2 drifted) + 2 standalone VM(s)")
    assert (plan.metadata.finding["targets"], plan.metadata.finding["target_vms"], plan.metadata.finding["revoked_targets"]) == (6, 4, 1)


def test_the_gate_denies_a_plan_that_changes_what_a_vm_is():
    plan = make_plan("rp-mixed", instances=2, environment="dev")
    doc = plan.model_dump(mode="json", exclude={"content_hash"})
    doc["spec"]["targets"]["instances"][1]["from_family"] = "debian-12"
    mixed = type(plan).model_validate(doc).sealed()
    gate = Gate.embedded()
    for wave in (0, 1):
        same = gate.decide(gate_request(plan, requested_by="sensor:drift", fleet_size=100, wave=wave, window_is_open=True))
        changed = gate.decide(gate_request(mixed, requested_by="sensor:drift", fleet_size=100, wave=wave, window_is_open=True))
        assert same.allow and not same.reasons
        assert not changed.allow
        assert list(changed.reasons) == ["never change what a VM is: from-family 'debian-12' is not the to-family 'ubuntu-22.04'"]
    doc["spec"]["targets"]["instances"][1]["from_family"] = None
    unnamed = type(plan).model_validate(doc).sealed()
    decision = gate.decide(gate_request(unnamed, requested_by="sensor:drift", fleet_size=100, window_is_open=True))
    assert list(decision.reasons) == ["every target must carry its from-family: a target without one could be any OS"]
