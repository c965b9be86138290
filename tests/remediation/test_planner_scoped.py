"""The columnar planner (plan candidates, one query for many findings) against the previous planner.

The previous planner is kept verbatim in tests/remediation/planner_before.py. On the sample estate's
materialised day (four platforms, scaling groups, mixed-family groups, VMs with no golden image) every
finding, a scope narrowed to some of its VMs, and the AI ask's choice over whole sites, environments and
the whole day must give the same plans (content hash, id, target count) and the same notes.
"""

from __future__ import annotations

import dataclasses

import pytest

from qlrf.ai.remediate import drift_plan
from qlrf.ai.taskspec import Scope
from qlrf.remediation.findings import findings_from_partition
from qlrf.remediation.planner import build_plans, plan_candidates
from qlrf.remediation.policy import RemediationPolicy
from qlrf.remediation.service import registry_for, risk_scores_for, scaling_groups_for
from qlrf.warehouse import Warehouse
from tests.remediation import planner_before

PLATFORMS = ("aws", "azure", "gcp", "vsphere")


@pytest.fixture(scope="module")
def day_inputs(materialized_day):
    """Per platform: (findings, vm_drift source, registry, scaling groups) of the sample day."""
    root, day = materialized_day
    wh, policy = Warehouse(str(root)), RemediationPolicy.load()
    inputs = {}
    for platform in PLATFORMS:
        if not wh.exists("vm_drift", day, platform):
            continue
        source = wh.source("vm_drift", day, platform)
        findings = findings_from_partition(wh.source("drift_scores", day, platform), source, policy, day)
        inputs[platform] = (findings, source, registry_for(wh, day, platform), scaling_groups_for(wh, day, platform))
    assert sum(len(f) for f, *_ in inputs.values()) >= 6, "the sample day should breach in several scopes"
    return wh, day, policy, inputs


def _old(finding, source, registry, groups, policy, **kw):
    notes: list[str] = []
    plans = planner_before.build_plans(finding, source, registry, policy, groups, skipped=notes, **kw)
    return plans, notes


def _hashes(plans):
    return [(p.metadata.id, p.spec.targets.count(), p.content_hash) for p in plans]


def test_every_finding_plans_as_before_hash_for_hash_with_the_same_notes(day_inputs):
    wh, day, policy, inputs = day_inputs
    seen_groups = seen_notes = 0
    for platform, (findings, source, registry, groups) in inputs.items():
        for finding in findings:
            risk = risk_scores_for(wh, day, platform, finding.asset_ids)
            before, old_notes = _old(finding, source, registry, groups, policy, risk_scores=risk)
            notes: list[str] = []
            after = build_plans(finding, source, registry, policy, groups, skipped=notes, risk_scores=risk)
            assert _hashes(after) == _hashes(before), finding.scope
            assert [p.model_dump() for p in after] == [p.model_dump() for p in before]
            assert notes == old_notes, finding.scope
            seen_groups += sum(len(p.spec.targets.groups) for p in after)
            seen_notes += len(notes)
    assert seen_groups and seen_notes, "the comparison must cover scaling groups and unplannable VMs"


def test_candidates_of_many_findings_in_one_query_match_the_per_finding_plans(day_inputs):
    _wh, _day, policy, inputs = day_inputs
    for findings, source, registry, groups in inputs.values():
        if not findings:
            continue
        notes: list[str] = []
        candidates = plan_candidates(findings, source, registry, policy, groups, skipped=notes)
        expected, expected_notes = [], []
        for finding in findings:
            plans, old_notes = _old(finding, source, registry, groups, policy)
            expected += plans
            expected_notes += old_notes
        # Known before building (id and size), and each builds to the previous plan.
        assert [(c.id, c.targets) for c in candidates] == [(p.metadata.id, p.spec.targets.count()) for p in expected]
        assert [c.build().content_hash for c in candidates] == [p.content_hash for p in expected]
        assert notes == expected_notes


def test_a_scope_narrowed_to_some_vms_plans_as_before(day_inputs):
    _wh, _day, policy, inputs = day_inputs
    narrowed = 0
    for findings, source, registry, groups in inputs.values():
        for finding in findings:
            if len(finding.asset_ids) < 3:
                continue
            some = dataclasses.replace(finding, asset_ids=finding.asset_ids[::3])
            before, old_notes = _old(some, source, registry, groups, policy)
            notes: list[str] = []
            assert _hashes(build_plans(some, source, registry, policy, groups, skipped=notes)) == _hashes(before)
            assert notes == old_notes
            narrowed += 1
    assert narrowed


def _before_drift_plan(inputs, policy, scope: Scope):
    """The previous AI path: every plan of every finding in scope built, the one with the most targets kept."""
    candidates = []
    for findings, source, registry, groups in inputs.values():
        for finding in findings:
            if (scope.site and finding.site != scope.site) or (scope.environment and finding.environment != scope.environment):
                continue
            candidates += [(p, finding) for p in _old(finding, source, registry, groups, policy)[0]]
    candidates.sort(key=lambda pf: (-pf[0].spec.targets.count(), pf[0].metadata.id))
    others = tuple(f"{p.metadata.id} ({f.scope}, {p.spec.targets.count()} targets)" for p, f in candidates[1:])
    return (candidates[0][0].content_hash, candidates[0][1], others) if candidates else None


@pytest.mark.parametrize("site, environment", [("syd1", "dev"), ("lon1", "prod"), ("sin1", "staging"), ("fra1", None),
                                               (None, "prod"), (None, None)])
def test_the_ask_proposes_the_plan_the_previous_path_proposed(day_inputs, site, environment):
    wh, day, policy, inputs = day_inputs
    scope = Scope(site=site, environment=environment)
    before = _before_drift_plan(inputs, policy, scope)
    after = drift_plan(wh, policy, scope, tuple(inputs), day=day, requested_by="qlrf.remediation.planner")
    if before is None:
        assert after is None
        return
    assert (after.plan.content_hash, after.finding, after.others) == before


def test_a_stored_plan_document_loads_back_to_the_same_sealed_plan(day_inputs):
    from qlrf.remediation.plans import parse_plan

    _wh, _day, policy, inputs = day_inputs
    for findings, source, registry, groups in inputs.values():
        for plan in (p for f in findings for p in build_plans(f, source, registry, policy, groups)):
            assert parse_plan(plan.to_yaml()).content_hash == plan.content_hash


def test_big_scopes_read_a_plan_s_rows_back_from_the_partition_and_plan_the_same(day_inputs, monkeypatch):
    """Above WIDE_LIMIT target ids the temp table keeps ids and slice keys only (see planner.WIDE_LIMIT)."""
    from qlrf.remediation import planner

    _wh, _day, policy, inputs = day_inputs
    for findings, source, registry, groups in inputs.values():
        wide_notes: list[str] = []
        wide = [(c.id, c.targets, c.build().content_hash)
                for c in plan_candidates(findings, source, registry, policy, groups, skipped=wide_notes)]
        monkeypatch.setattr(planner, "WIDE_LIMIT", 0)
        narrow_notes: list[str] = []
        narrow = [(c.id, c.targets, c.build().content_hash)
                  for c in plan_candidates(findings, source, registry, policy, groups, skipped=narrow_notes)]
        monkeypatch.undo()
        assert narrow == wide and narrow_notes == wide_notes


@pytest.mark.parametrize("wide_limit", [None, 0])
def test_every_platform_in_one_pass_plans_as_each_platform_apart(day_inputs, monkeypatch, wide_limit):
    """The ask plans every platform's findings in one pass (a list of partitions, registries and group facts
    per platform): the same candidates, plans and notes as one pass per platform, wide or narrow."""
    from qlrf.remediation import planner

    _wh, _day, policy, inputs = day_inputs
    if wide_limit is not None:
        monkeypatch.setattr(planner, "WIDE_LIMIT", wide_limit)
    apart, apart_notes = [], []
    for findings, source, registry, groups in inputs.values():
        apart += [(c.id, c.targets, c.build().content_hash)
                  for c in plan_candidates(findings, source, registry, policy, groups, skipped=apart_notes)]
    together_notes: list[str] = []
    together = plan_candidates([f for fs, *_ in inputs.values() for f in fs], [s for _, s, *_ in inputs.values()],
                               {p: v[2] for p, v in inputs.items()}, policy, {p: v[3] for p, v in inputs.items()},
                               skipped=together_notes)
    assert len({c.finding.platform for c in together}) >= 3
    assert [(c.id, c.targets, c.build().content_hash) for c in together] == apart
    assert together_notes == apart_notes
