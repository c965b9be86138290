"""The TaskSpec contract: valid and invalid specs, the risk floor, policy-filled fields, hash, schema file."""

from __future__ import annotations

import json

import pytest

from qlrf.ai.taskspec import (
    ACTION_TYPES,
    INTENT_MAX_CHARS,
    SCHEMA_PATH,
    Scope,
    TaskProposal,
    TaskSpec,
    TaskSpecError,
    parse_proposal,
    parse_spec,
    rule_risk,
    schema_text,
)
from qlrf.platforms import PLATFORMS
from qlrf.remediation.policy import RemediationPolicy

PLAN_HASH = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def policy() -> RemediationPolicy:
    return RemediationPolicy.load()


def proposal(**overrides) -> dict:
    body = {
        "intent": "patch the revoked images in syd1 dev",
        "agent": "patch",
        "task_type": "remediate_drift",
        "scope": {"site": "syd1", "environment": "dev", "platform": "aws", "target_count": 12},
        "tool_calls": [{"name": "get_drift_status", "arguments": {"site": "syd1"}, "status": "ok",
                        "result_summary": "12 drifted VMs"}],
        "model_risk_level": "low",
        "explanation": "12 VMs in syd1 dev run a revoked image (get_drift_status).",
    }
    return {**body, **overrides}


def spec_for(policy: RemediationPolicy, plan_hash: str | None = PLAN_HASH, **overrides) -> TaskSpec:
    return TaskSpec.from_proposal(parse_proposal(proposal(**overrides)), policy=policy, plan_hash=plan_hash)


def test_a_valid_action_proposal_becomes_a_sealed_spec_with_policy_fields(policy):
    spec = spec_for(policy)
    assert spec.schema_version == "1.0"
    assert spec.autonomy_mode == policy.environments["dev"].autonomy_mode
    assert spec.approval_required is True
    assert spec.plan_hash == PLAN_HASH
    assert spec.risk_level == "low"
    assert spec.content_hash == spec.compute_hash() and spec.content_hash.startswith("sha256:")


def test_an_answer_creates_no_task_and_carries_no_autonomy_or_plan(policy):
    spec = spec_for(policy, plan_hash=None, agent="drift", task_type="answer", intent="which prod VMs drift?")
    assert (spec.autonomy_mode, spec.approval_required, spec.plan_hash, spec.risk_level) == (None, False, None, "low")


def test_the_spec_round_trips_through_json_with_the_same_hash(policy):
    spec = spec_for(policy)
    again = parse_spec(spec.model_dump_json())
    assert again == spec and again.content_hash == spec.content_hash


def test_the_content_hash_is_deterministic_and_changes_with_content(policy):
    assert spec_for(policy).content_hash == spec_for(policy).content_hash
    assert spec_for(policy).content_hash != spec_for(policy, explanation="other").content_hash


def test_a_spec_edited_after_sealing_is_refused(policy):
    body = json.loads(spec_for(policy).model_dump_json())
    body["scope"]["site"] = "mel1"
    with pytest.raises(TaskSpecError, match="content_hash"):
        parse_spec(body)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"agent": "sales"}, "agent"),
        ({"task_type": "delete_everything"}, "task_type"),
        ({"intent": ""}, "intent"),
        ({"intent": "   "}, "intent"),
        ({"intent": "x" * (INTENT_MAX_CHARS + 1)}, "intent"),
        ({"scope": {"platform": "openstack"}}, "scope.platform"),
        ({"scope": {"environment": "production"}}, "scope.environment"),
        ({"scope": {"target_count": -1}}, "scope.target_count"),
        ({"scope": {"tenant": "acme"}}, "scope.tenant"),
        ({"tool_calls": [{"name": "query_assets", "status": "maybe"}]}, "tool_calls.0.status"),
        ({"tool_calls": [{"name": "DROP TABLE", "status": "ok"}]}, "tool_calls.0.name"),
        ({"model_risk_level": "extreme"}, "model_risk_level"),
        ({"schema_version": "2.0"}, "schema_version"),
    ],
)
def test_an_invalid_proposal_is_refused_naming_the_field(overrides, field):
    with pytest.raises(TaskSpecError) as raised:
        parse_proposal(proposal(**overrides))
    assert f"{field}:" in str(raised.value)


@pytest.mark.parametrize("field", ["autonomy_mode", "approval_required", "plan_hash", "risk_level", "content_hash"])
def test_a_proposal_may_not_set_what_policy_and_the_planner_decide(field):
    with pytest.raises(TaskSpecError, match=f"{field}: Extra inputs are not permitted"):
        parse_proposal(proposal(**{field: "full_auto"}))


def test_every_platform_of_the_registry_is_a_valid_scope_platform():
    assert [Scope(platform=p).platform for p in PLATFORMS] == list(PLATFORMS)


@pytest.mark.parametrize(
    ("task_type", "scope", "expected"),
    [
        ("answer", {"environment": "prod"}, "low"),
        ("compliance_report", {}, "low"),
        ("open_incident", {"environment": "prod"}, "low"),
        ("simulate_failover", {"environment": "prod"}, "low"),
        ("remediate_drift", {"environment": "dev", "target_count": 5}, "low"),
        ("remediate_drift", {"environment": "staging", "target_count": 5}, "medium"),
        ("remediate_drift", {"environment": "prod", "target_count": 5}, "high"),
        ("remediate_drift", {"environment": "dev", "target_count": 101}, "medium"),
        ("remediate_drift", {"environment": "dev", "target_count": 1001}, "high"),
        ("remediate_drift", {"environment": "prod", "target_count": 1001}, "critical"),
        ("rightsize", {"environment": "dev", "asset_ids": ["i-1", "i-2"]}, "low"),
        ("rebuild_image", {"environment": "dev"}, "high"),  # unresolved, unbounded: counts as large
        ("dr_drill", {"target_count": 3}, "high"),  # no environment filter: prod is in scope
    ],
)
def test_rule_risk_follows_action_environment_and_scope_size(task_type, scope, expected):
    assert rule_risk(task_type, Scope(**scope)) == expected


@pytest.mark.parametrize("model_says", ["low", "medium", None])
def test_the_model_can_never_lower_the_rule_risk(policy, model_says):
    scope = {"environment": "prod", "target_count": 2000}
    spec = spec_for(policy, scope=scope, model_risk_level=model_says)
    assert spec.risk_level == "critical"


def test_a_stored_spec_claiming_a_lower_risk_is_raised_to_the_rule(policy):
    body = json.loads(spec_for(policy, scope={"environment": "prod", "target_count": 5}).model_dump_json())
    body.update(risk_level="low", model_risk_level="low", content_hash=None)
    assert parse_spec(body).risk_level == "high"


def test_the_model_can_raise_the_risk(policy):
    assert spec_for(policy, model_risk_level="critical").risk_level == "critical"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"task_type": "answer", "autonomy_mode": "plan_only"}, "autonomy_mode"),
        ({"task_type": "answer", "plan_hash": PLAN_HASH}, "plan_hash"),
        ({"task_type": "answer", "approval_required": True}, "approval_required"),
        ({"autonomy_mode": None}, "autonomy_mode"),
        ({"approval_required": False}, "approval_required"),
        ({"plan_hash": None}, "plan_hash"),
        ({"plan_hash": "md5:abc"}, "plan_hash"),
    ],
)
def test_a_spec_breaking_the_contract_is_refused_naming_the_field(policy, overrides, field):
    body = {**json.loads(spec_for(policy).model_dump_json()), "content_hash": None, **overrides}
    with pytest.raises(TaskSpecError, match=f"{field}:"):
        parse_spec(body)


def test_actions_without_a_planner_need_no_plan_hash_yet(policy):
    for task_type in set(ACTION_TYPES) - {"remediate_drift"}:
        spec = spec_for(policy, plan_hash=None, agent="dr", task_type=task_type)
        assert spec.plan_hash is None and spec.approval_required


def test_without_an_environment_filter_the_least_autonomous_mode_applies(policy):
    spec = spec_for(policy, scope={"site": "syd1", "target_count": 3})
    modes = {env.autonomy_mode for env in policy.environments.values()}
    expected = next(m for m in ("plan_only", "canary_only", "full_auto") if m in modes)
    assert spec.autonomy_mode == expected


def test_json_text_from_a_model_is_parsed_and_bad_json_named():
    assert parse_proposal(json.dumps(proposal())).agent == "patch"
    with pytest.raises(TaskSpecError, match="invalid TaskProposal"):
        parse_proposal("{not json")


def test_a_proposal_is_not_a_spec():
    assert not isinstance(TaskProposal.model_validate(proposal()), TaskSpec)


def test_the_exported_schema_file_is_current():
    """If this fails, run `python -m qlrf.ai.taskspec` and commit qlrf/ai/schema/taskspec.v1.json."""
    assert SCHEMA_PATH.read_text() == schema_text()
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["additionalProperties"] is False
    assert {"intent", "agent", "task_type"} <= set(schema["required"])


def test_a_spec_can_be_rebuilt_from_itself_under_a_new_policy(policy):
    spec = spec_for(policy)
    assert TaskSpec.from_proposal(spec, policy=policy, plan_hash=PLAN_HASH) == spec


@pytest.mark.parametrize("asset_id", ["", "i-" + "x" * 300])
def test_asset_ids_are_bounded_strings(asset_id):
    with pytest.raises(TaskSpecError, match=r"scope\.asset_ids\.0:"):
        parse_proposal(proposal(scope={"asset_ids": [asset_id]}))
