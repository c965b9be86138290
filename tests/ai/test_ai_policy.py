"""The validation pipeline's policy step: a TaskSpec asked of the real embedded gate (action ``ai_task``)."""

from __future__ import annotations

import json

import pytest

from qlrf.ai.taskspec import TaskSpec, parse_proposal
from qlrf.ai.validation import (
    AI_TASK_ACTION,
    AI_TASK_DECISION_PATH,
    POLICY_STEP,
    StepResult,
    policy_request,
    policy_step,
    proposal_set_autonomy,
)
from qlrf.remediation.gate import Gate, Outcome
from qlrf.remediation.policy import RemediationPolicy
from tests.fakes.opa_fake import start_opa_fake

PLAN_HASH = "sha256:" + "ab" * 32
SELF_SET = "a task may not set its own autonomy mode or approval: the proposal tried, so it is not trusted"
SPEC_APPROVAL = "the task spec requires approval (AI tasks wait for a human)"


@pytest.fixture(scope="module")
def gate() -> Gate:
    return Gate.embedded(decision_path=AI_TASK_DECISION_PATH)


@pytest.fixture(scope="module")
def policy() -> RemediationPolicy:
    return RemediationPolicy.load()


def spec(policy: RemediationPolicy, *, task_type: str = "remediate_drift", plan_hash: str | None = PLAN_HASH,
         **scope) -> TaskSpec:
    body = {
        "intent": "patch the revoked images in syd1",
        "agent": "patch",
        "task_type": task_type,
        "scope": {"site": "syd1", "environment": "dev", "target_count": 12, **scope},
    }
    return TaskSpec.from_proposal(parse_proposal(body), policy=policy,
                                  plan_hash=plan_hash if task_type == "remediate_drift" else None)


def test_the_request_carries_the_spec_for_the_ai_task_action(policy):
    s = spec(policy, environment="prod", target_count=7)
    request = policy_request(s, requested_by="user:alice")
    assert request == {
        "action": AI_TASK_ACTION,
        "task_type": "remediate_drift",
        "environment": "prod",
        "autonomy_mode": s.autonomy_mode,
        "risk_level": s.risk_level,
        "targets": 7,
        "approval_required": True,
        "proposal_set_autonomy": False,
        "task_hash": s.content_hash,
        "requested_by": "user:alice",
    }
    json.dumps(request)  # the gate's input is a JSON document


def test_an_answer_in_prod_is_allowed_without_approval(gate, policy):
    result = policy_step(spec(policy, task_type="answer", environment="prod", target_count=None), gate,
                         requested_by="user:alice")
    assert isinstance(result, StepResult)
    assert (result.step, result.outcome, result.passed) == (POLICY_STEP, Outcome.ALLOWED, True)
    assert result.reasons == () and result.approval_reasons == ()


def test_a_destructive_task_in_prod_waits_for_approval_with_its_reasons(gate, policy):
    result = policy_step(spec(policy, environment="prod", target_count=12), gate, requested_by="user:alice")
    assert result.outcome is Outcome.NEEDS_APPROVAL
    assert not result.passed and result.needs_approval
    assert result.reasons == ()
    assert "a destructive AI task in prod needs approval" in result.approval_reasons
    assert SPEC_APPROVAL in result.approval_reasons


def test_an_approval_of_the_exact_spec_lets_it_pass(gate, policy):
    s = spec(policy, environment="prod", target_count=12)
    result = policy_step(s, gate, requested_by="user:alice",
                         approval={"task_hash": s.content_hash, "approver": "bob"})
    assert result.outcome is Outcome.ALLOWED and result.passed
    assert result.decision.approved is True


def test_an_approval_of_another_spec_is_denied(gate, policy):
    s = spec(policy, environment="prod", target_count=12)
    other = spec(policy, environment="prod", target_count=13)
    result = policy_step(s, gate, requested_by="user:alice",
                         approval={"task_hash": other.content_hash, "approver": "bob"})
    assert result.outcome is Outcome.POLICY_DENY
    assert result.reasons == ("approval is for a different task hash: a changed task needs a new approval",)


def test_a_proposal_that_set_its_own_autonomy_is_denied(gate, policy):
    raw = {"intent": "just do it", "agent": "patch", "task_type": "answer", "autonomy_mode": "full_auto"}
    assert proposal_set_autonomy(raw) and proposal_set_autonomy(json.dumps(raw))
    result = policy_step(spec(policy, task_type="answer"), gate, requested_by="user:alice",
                         proposal_set_autonomy=proposal_set_autonomy(raw))
    assert result.outcome is Outcome.POLICY_DENY
    assert result.reasons == (SELF_SET,)


@pytest.mark.parametrize("raw", [
    {"intent": "x", "agent": "patch", "task_type": "answer"},
    '{"intent": "x"}',
    "not json",
    ["autonomy_mode"],
])
def test_a_proposal_that_left_autonomy_alone_did_not_try(raw):
    assert proposal_set_autonomy(raw) is False


def test_a_proposal_granting_itself_no_approval_tried_too():
    assert proposal_set_autonomy({"intent": "x", "approval_required": False})


def test_a_scope_above_the_low_limit_is_raised_to_medium_by_the_rule_before_the_policy_sees_it(gate, policy):
    # The policy's limits are the rule's steps, so a sealed spec never carries a risk too low for its size.
    s = spec(policy, task_type="rightsize", environment="dev", target_count=150)
    assert s.risk_level == "medium"
    assert policy_step(s, gate, requested_by="user:alice").reasons == ()


def test_a_request_whose_risk_is_too_low_for_its_size_is_denied_with_the_numbers(gate, policy):
    request = {**policy_request(spec(policy, task_type="rightsize", environment="dev", target_count=60),
                                requested_by="user:alice"), "targets": 160}
    decision = gate.decide(request)
    assert decision.outcome is Outcome.POLICY_DENY
    assert decision.reasons == ("scope of 160 targets is above the limit of 100 for risk level low: split the task",)


def test_full_auto_never_applies_to_an_ai_task_in_prod(gate, policy):
    # A spec stored with full_auto in prod (a policy file edited to allow it) is still denied.
    s = TaskSpec.model_validate({**spec(policy, environment="prod").model_dump(), "autonomy_mode": "full_auto",
                                 "content_hash": None}).sealed()
    result = policy_step(s, gate, requested_by="user:alice")
    assert result.outcome is Outcome.POLICY_DENY
    assert "full_auto never applies to an AI task in prod" in result.reasons


def test_a_gate_that_cannot_decide_fails_the_step_closed(policy, tmp_path):
    (tmp_path / "gate.rego").write_text("package qlrf.gate\n\nimport rego.v1\n\nnothing := true\n")
    result = policy_step(spec(policy, task_type="answer"), Gate.embedded(tmp_path, decision_path=AI_TASK_DECISION_PATH), requested_by="user:alice")
    assert result.outcome is Outcome.UNDEFINED and result.gate_failed and not result.passed
    assert result.reasons and "undefined" in result.reasons[0]


def test_the_remote_gate_gives_the_ai_task_the_same_verdicts(gate, policy):
    specs = [spec(policy, task_type="answer", environment="prod"), spec(policy, environment="prod"),
             TaskSpec.model_validate({**spec(policy, environment="prod").model_dump(), "autonomy_mode": "full_auto",
                                      "content_hash": None}).sealed()]
    with start_opa_fake() as fake:
        remote = Gate.remote(fake.url, decision_path=AI_TASK_DECISION_PATH)
        try:
            verdicts = [policy_step(s, remote, requested_by="user:alice") for s in specs]
        finally:
            remote.close()
    local = [policy_step(s, gate, requested_by="user:alice") for s in specs]
    assert [(r.outcome, r.reasons, r.approval_reasons) for r in verdicts] == [
        (r.outcome, r.reasons, r.approval_reasons) for r in local
    ]
    assert [r.outcome for r in verdicts] == [Outcome.ALLOWED, Outcome.NEEDS_APPROVAL, Outcome.POLICY_DENY]
