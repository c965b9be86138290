"""Drill plans as contracts: the examples validate, bad fields are named, edits after sealing are
refused by hash, scopes resolve against the inventory (or are refused naming why), and the dr
policy decides drills through the gate; a dr_drill task binds approvals to the plan hash."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from qlrf.dr.authorise import DR_DECISION_PATH, drill_document, drill_request
from qlrf.dr.plans import DrillPlanError, load_drill_plan, parse_drill_plan
from qlrf.dr.scope import resolve_scope
from qlrf.remediation.gate import Gate
from tests.dr.support import drill_plan
from tests.remediation.support import sqlite_task_store

EXAMPLES = sorted((Path(__file__).parents[2] / "policy" / "drills").glob("*.yaml"))
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_plans_validate(path):
    plan = load_drill_plan(path)
    assert plan.plan_hash.startswith("sha256:") and len(plan.plan_hash) == 71
    assert [s.name for s in plan.spec.steps] == ["locate", "copy", "provision", "launch", "verify"]


def _doc(**spec):
    doc = yaml.safe_load(drill_plan().to_yaml())
    doc.pop("content_hash")
    doc["spec"].update(spec)
    return doc


@pytest.mark.parametrize(("change", "field"), [
    ({"cleanup": "sometimes"}, "spec.cleanup"),
    ({"objectives": {"rto_seconds": 0, "rpo_seconds": 60}}, "spec.objectives.rto_seconds"),
    ({"scope": {}}, "spec.scope: Value error, a scope needs at least one of site, group, vms or selector"),
    ({"scope": {"selector": {"colour": "red"}}}, "selector names unknown field(s) ['colour']"),
    ({"steps": [{"name": "launch", "timeout_seconds": 5}]}, "steps must be exactly locate, copy, provision, launch, verify"),
    ({"steady_state": {"before": [{"check": "restore_point_age"}]}}, "restore_point_age needs max_seconds"),
    ({"restore_from": {"kind": "template", "template": "golden"}}, "template is for vSphere only"),
    ({"target": {"region": "us-west-2", "colour": "red"}}, "spec.target.colour: Extra inputs are not permitted"),
])
def test_an_invalid_plan_is_refused_naming_the_field(change, field):
    with pytest.raises(DrillPlanError, match="invalid drill plan") as err:
        parse_drill_plan(yaml.safe_dump(_doc(**change)), "plan.yaml")
    assert field in str(err.value) and str(err.value).startswith("plan.yaml: ")


def test_a_plan_edited_after_sealing_is_refused_by_its_hash():
    sealed = drill_plan().to_yaml()
    assert parse_drill_plan(sealed).plan_hash == drill_plan().plan_hash
    edited = sealed.replace("rto_seconds: 3600", "rto_seconds: 7200")
    with pytest.raises(DrillPlanError, match="content_hash sha256:[0-9a-f]{64} does not match the plan's content"):
        parse_drill_plan(edited)
    with pytest.raises(DrillPlanError, match="kind: expected DrillPlan"):
        parse_drill_plan(sealed.replace("kind: DrillPlan", "kind: PatchPlan"))


INVENTORY = [
    {"asset_id": "i-1", "platform": "aws", "site": "syd1", "group": "web", "environment": "prod", "state": "running",
     "tags": {"tier": "web"}, "name": "web-1"},
    {"asset_id": "i-2", "platform": "aws", "site": "syd1", "group": "db", "environment": "prod", "state": "running",
     "tags": {"tier": "db"}, "name": "db-1"},
    {"asset_id": "i-3", "platform": "aws", "site": "syd1", "group": "web", "environment": "prod", "state": "terminated",
     "name": "web-old"},
    {"asset_id": "i-4", "platform": "aws", "site": "mel1", "group": "web", "environment": "prod", "state": "running",
     "name": "web-mel"},
]


@pytest.mark.parametrize(("scope", "expected"), [
    ({"site": "syd1"}, ["i-1", "i-2"]),
    ({"group": "web"}, ["i-1", "i-4"]),
    ({"site": "syd1", "group": "web"}, ["i-1"]),
    ({"vms": ["i-4", "i-2"]}, ["i-2", "i-4"]),
    ({"selector": {"tags.tier": "db"}}, ["i-2"]),
    ({"selector": {"site": ["syd1", "mel1"], "group": "web"}}, ["i-1", "i-4"]),
])
def test_scope_resolves_against_the_inventory_without_terminated_vms(scope, expected):
    assert [vm.asset_id for vm in resolve_scope(drill_plan(scope=scope), INVENTORY)] == expected


def test_scope_refusals_name_what_is_wrong():
    with pytest.raises(DrillPlanError, match=r"spec.scope.vms: \['i-3', 'i-9'\] not in the inventory"):
        resolve_scope(drill_plan(scope={"vms": ["i-1", "i-3", "i-9"]}), INVENTORY)
    with pytest.raises(DrillPlanError, match="selects no aws VM"):
        resolve_scope(drill_plan(scope={"site": "per1"}), INVENTORY)
    with pytest.raises(DrillPlanError, match="above spec.scope.max_vms 1"):
        resolve_scope(drill_plan(scope={"site": "syd1", "max_vms": 1}), INVENTORY)


@pytest.fixture(scope="module")
def gate():
    return Gate.embedded(decision_path=DR_DECISION_PATH)


def test_the_dr_policy_decides_drills_through_the_gate(gate):
    staging = drill_plan()
    assert gate.decide(drill_request(staging, targets=3, requested_by="cli:alice")).allow
    prod = drill_plan(environment="prod", autonomy="canary_only")
    d = gate.decide(drill_request(prod, targets=3, requested_by="cli:alice"))
    assert not d.allow and d.requires_approval and "a drill in prod needs approval" in d.approval_reasons
    kept = drill_plan(environment="prod", autonomy="canary_only", cleanup="never")
    d = gate.decide(drill_request(kept, targets=1, requested_by="cli:alice"))
    assert not d.allow and any("cleanup never is refused in prod" in r for r in d.reasons)


def test_a_dr_drill_task_binds_the_approval_to_the_plan_hash(gate, tmp_path):
    store = sqlite_task_store(tmp_path, lambda: NOW)
    plan = drill_plan(environment="prod", autonomy="canary_only")
    decision = gate.decide(drill_request(plan, targets=2, requested_by="cli:alice"))
    task = store.propose_drill(drill_document(plan, 2), "cli:alice", decision)
    assert (task.kind, task.state, task.plan_hash, task.task_type) == ("dr_drill", "pending_approval", plan.plan_hash, "dr_drill")
    assert task.spec_document()["metadata"]["id"] == plan.metadata.id
    with pytest.raises(ValueError, match="a drill plan, not a patch plan"):
        task.plan()
    with pytest.raises(ValueError, match="bound to plan hash"):
        store.approve(task.id, drill_plan(environment="prod", autonomy="canary_only", rto=60).plan_hash, "bob", "ok")
    approved = store.approve(task.id, plan.plan_hash, "bob", "reviewed")
    assert approved.state == "approved" and store.approval_record(approved) is not None
    assert store.approved_waiting() == []  # the patch-plan execution sensor never launches a drill
    assert [r.kind for r in store.audit.records(subject=task.id)][:3] == ["drill_proposed", "policy_decision", "approval_requested"]


def test_approvals_show_and_list_present_a_drill_task(gate, tmp_path, monkeypatch, capsys):
    from qlrf.cli import main

    monkeypatch.setenv("QLRF_HOME", str(tmp_path))
    monkeypatch.delenv("QLRF_POSTGRES_URL", raising=False)
    from qlrf.remediation.approvals import TaskStore
    from qlrf.remediation.audit import AuditLog

    store = TaskStore(audit=AuditLog())
    plan = drill_plan(environment="prod", autonomy="canary_only")
    task = store.propose_drill(drill_document(plan, 2), "cli:alice",
                               gate.decide(drill_request(plan, targets=2, requested_by="cli:alice")))
    assert main(["approvals", "show", task.id]) == 0
    out = capsys.readouterr().out
    assert f"drill plan  aws-drill ({plan.plan_hash})" in out and "target      region=us-west-2" in out
    assert main(["approvals", "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(task.id))
    assert row.split()[1:3] == ["pending_approval", "drill"]
