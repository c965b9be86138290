"""The orchestrator's steps over a real (small) warehouse, task store, audit log and Rego gates."""

from __future__ import annotations

import json

import pytest

from qlrf.ai.orchestrator import ASK_AUDIT_KIND, STEPS, default_proposers
from qlrf.ai.tasks import spec_of
from qlrf.ai.taskspec import INTENT_MAX_CHARS
from tests.ai.orchestrator.conftest import SYD1_DEV_REVOKED, Scripted, proposal

PATCH = "patch the revoked images in syd1 dev"


def outcomes(result) -> dict[str, str]:
    return {s.step: s.outcome for s in result.validation}


def test_remediate_drift_becomes_a_pending_task_bound_to_the_planners_plan(orchestrator, store, audit):
    router = Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1", environment="dev"),
                      tools=(("query_assets", {"site": "syd1", "environment": "dev"}),))
    result = orchestrator(router).ask(PATCH, requested_by="cli:alice")
    assert result.refused_by is None, result.validation
    assert [s.step for s in result.validation] == list(STEPS)
    assert set(outcomes(result).values()) == {"passed"}
    task = store.get(result.task_id)
    assert (task.kind, task.state, task.requested_by, task.site, task.environment) == (
        "patch_plan", "pending_approval", "cli:alice", "syd1", "dev")
    plan = task.plan()  # the planner's plan, re-validated against the task's hash
    assert sorted(t.asset_id for t in plan.spec.targets.instances) == list(SYD1_DEV_REVOKED)
    assert result.task_spec["plan_hash"] == task.plan_hash and result.task_spec["scope"]["target_count"] == 2
    assert task.decision["ai_task"]["outcome"] == "needs_approval" and task.decision["allow"] is False
    assert f"qlrf approvals show {task.id}" in result.answer
    [ask] = audit.records(kind=ASK_AUDIT_KIND)
    assert ask.data["task_id"] == task.id and ask.data["intent_chars"] == len(PATCH) and PATCH not in json.dumps(ask.data)
    with pytest.raises(Exception, match="self-approval refused"):
        store.approve(task.id, task.plan_hash, "CLI:Alice", "mine")
    # The same question again: the same plan and hash, so the same task, said as such.
    again = orchestrator(router).ask(PATCH, requested_by="cli:alice")
    assert again.task_id == task.id and len(store.list()) == 1


def test_a_read_only_answer_creates_no_task(orchestrator, store, audit):
    router = Scripted("drift", "answer", tools=(("query_assets", {"site": "syd1", "environment": "prod"}),),
                      answer="1 prod VM in syd1 runs a revoked image.")
    result = orchestrator(router).ask("which prod VMs in syd1 still run revoked images?", requested_by="cli:bob")
    assert result.refused_by is None and result.task_id is None and result.task_spec is None
    assert [s.step for s in result.validation] == list(STEPS) and outcomes(result)["task"] == "skipped"
    assert result.citations[0].value == 2
    assert store.list() == [] and [r.data["task_type"] for r in audit.records(kind=ASK_AUDIT_KIND)] == ["answer"]
    assert [r.data["tool"] for r in audit.records(kind="ai_tool_call")] == ["query_assets"]


def test_an_ai_task_kind_for_types_without_a_planner(orchestrator, store):
    router = Scripted("image", "rebuild_image", lambda i: {**proposal(i, "image", "rebuild_image", site="lon1",
                                                                        environment="dev")})
    result = orchestrator(router).ask("rebuild the image for lon1 dev", requested_by="cli:alice")
    assert result.refused_by is None, result.validation
    task = store.get(result.task_id)
    assert (task.kind, task.state, task.task_type) == ("ai_task", "pending_approval", "rebuild_image")
    assert spec_of(task).scope.target_count == 12 and spec_of(task).content_hash == task.plan_hash


@pytest.mark.parametrize(("intent", "step", "reason"), [
    ("", "screen", "intent: is empty"),
    ("   \n", "screen", "intent: is empty"),
    ("x" * (INTENT_MAX_CHARS + 1), "screen", f"over the limit of {INTENT_MAX_CHARS}"),
    ("patch syd1\x00dev", "screen", "binary data"),
    ("patch syd1 \x1b[31mdev", "screen", "control characters (U+001B)"),
    ("parchear las imágenes revocadas por favor en syd1", "screen", "only English is supported"),
    ("исправить образы в syd1", "screen", "only English is supported"),
])
def test_unusable_intents_are_refused_before_any_proposer(orchestrator, store, audit, intent, step, reason):
    router = Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1", environment="dev"))
    result = orchestrator(router).ask(intent, requested_by="cli:alice")
    assert result.refused_by == step and reason in result.answer and result.agent is None
    assert router.calls == [] and store.list() == []
    assert [r.data["refused_by"] for r in audit.records(kind=ASK_AUDIT_KIND)] == [step]


@pytest.mark.parametrize(("draft", "step", "reason"), [
    (Scripted("patch", "remediate_drift", None), "schema", "proposed no task"),
    (Scripted("patch", "remediate_drift", "{not json"), "schema", "not JSON"),
    (Scripted("patch", "remediate_drift", lambda i: {**proposal(i, site="syd1"), "scope": {"site": 7}}), "schema",
     "scope.site: Input should be a valid string"),
    (Scripted("patch", "remediate_drift", lambda i: {**proposal(i, site="syd1"), "sql": "DROP"}), "schema",
     "sql: Extra inputs are not permitted"),
    (Scripted("root", "remediate_drift", lambda i: proposal(i)), "schema", "agent 'root'"),
    (Scripted("patch", "reboot_all", lambda i: proposal(i)), "schema", "task type 'reboot_all'"),
    (Scripted("patch", "remediate_drift", lambda i: proposal("something else", site="syd1", environment="dev")),
     "schema", "the user's words"),
    (Scripted("image", "remediate_drift", lambda i: proposal(i, "image", site="syd1", environment="dev")), "agent",
     "agent 'image' may not propose 'remediate_drift'"),
    (Scripted("patch", "remediate_drift", lambda i: proposal(i, site="mel9", environment="dev")), "scope",
     "wider than the intent asked"),
    (Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1")), "scope",
     "scope.environment: the intent named dev, the proposal drops that filter"),
    (Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1", environment="prod")), "scope",
     "'prod' is not what the intent named (dev)"),
    (Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1", environment="dev", asset_ids=["i-0004"])),
     "scope", "scope.asset_ids: 1 not in the scope"),
    (Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1", environment="dev", platform="gcp")),
     "scope", "no vm_drift partition for platform 'gcp'"),
])
def test_each_step_refuses_with_its_name_and_writes_only_the_audit_record(orchestrator, store, audit, draft, step, reason):
    result = orchestrator(draft).ask(PATCH, requested_by="cli:alice")
    assert result.refused_by == step and reason in result.answer, result.answer
    assert outcomes(result)[step] == "failed" and result.task_id is None and store.list() == []
    assert [r.kind for r in audit.records() if r.kind != "ai_tool_call"] == [ASK_AUDIT_KIND]


def test_unknown_site_in_a_scope_the_intent_did_not_name_is_named(orchestrator):
    router = Scripted("patch", "remediate_drift", lambda i: proposal(i, site="mel9", environment="dev"))
    result = orchestrator(router).ask("patch the revoked images in dev", requested_by="cli:alice")
    assert result.refused_by == "scope" and "unknown site 'mel9'" in result.answer and "syd1" in result.answer


def test_empty_scope_and_nothing_to_remediate_create_no_task(orchestrator, store):
    nothing = Scripted("patch", "remediate_drift", lambda i: proposal(i, site="lon1", environment="dev"))
    result = orchestrator(nothing).ask("patch the drift in lon1 dev", requested_by="cli:alice")
    assert result.refused_by == "scope" and "no drifted VM" in result.answer and "empty scope" in result.answer
    stopped = Scripted("cost", "rightsize", lambda i: proposal(i, "cost", "rightsize", site="lon1", environment="prod"))
    result = orchestrator(stopped).ask("rightsize lon1 prod", requested_by="cli:alice")
    assert result.refused_by == "scope" and "no VM matches" in result.answer and store.list() == []


def test_policy_denies_a_proposal_that_sets_its_own_autonomy(orchestrator, store):
    router = Scripted("patch", "remediate_drift",
                      lambda i: {**proposal(i, site="syd1", environment="dev"), "autonomy_mode": "full_auto"})
    result = orchestrator(router).ask(PATCH, requested_by="cli:alice")
    assert outcomes(result)["schema"] == "flagged"
    assert result.refused_by == "policy" and "may not set its own autonomy" in result.answer and store.list() == []


def test_the_org_must_be_the_askers(orchestrator):
    router = Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1", environment="dev", org="other"))
    result = orchestrator(router).ask(PATCH, org="acme", requested_by="cli:alice")
    assert result.refused_by == "scope" and "not the asker's organisation 'acme'" in result.answer


def test_a_failed_model_falls_back_to_the_offline_router_and_says_so(orchestrator):
    model = Scripted("patch", "remediate_drift", source="model", fail="model timed out after 30 s")
    router = Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1", environment="dev"))
    result = orchestrator(model, router).ask(PATCH, requested_by="cli:alice")
    assert result.source == "offline" and result.task_id is not None
    assert outcomes(result)["draft"] == "flagged" and "model proposer failed: model timed out" in result.notes[0]
    alone = orchestrator(model).ask(PATCH, requested_by="cli:alice")
    assert alone.refused_by == "draft" and "model timed out" in alone.answer


def test_no_proposer_installed_is_a_draft_refusal(orchestrator):
    result = orchestrator().ask(PATCH, requested_by="cli:alice")
    assert result.refused_by == "draft" and "no proposer is installed" in result.answer


def test_default_proposers_tolerates_their_absence_only():
    proposers = default_proposers({})
    assert all(p.source in ("model", "offline") for p in proposers)


def test_identity_is_required(orchestrator):
    with pytest.raises(ValueError, match="requested_by"):
        orchestrator().ask(PATCH, requested_by="  ")


def test_as_dict_is_plain_json(orchestrator):
    router = Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1", environment="dev"))
    doc = json.loads(json.dumps(orchestrator(router).ask(PATCH, requested_by="cli:alice").as_dict()))
    assert {"agent", "task_type", "answer", "citations", "tool_calls", "task_spec", "task_id", "validation",
            "source"} <= set(doc)


def test_an_answer_from_tools_outside_its_agent_is_refused_and_not_shown(orchestrator):
    router = Scripted("image", "answer", tools=(("estimate_cost", {}),), answer="It costs 12 USD.")
    result = orchestrator(router).ask("what does syd1 cost?", requested_by="cli:alice")
    assert result.refused_by == "agent" and "may not call 'estimate_cost'" in result.answer
    assert "12 USD" not in result.answer and result.citations == ()
