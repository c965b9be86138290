"""ModelProposer end to end: the real openai package, the scripted loopback model, a real ToolBox per
agent over a small scored warehouse, and the audit log. Every path of issue 10's model side: a good
draft, schema retry (item 6b), refusal, timeout, tool abuse, injection, ungrounded numbers, 429/5xx."""

from __future__ import annotations

import json

import pytest

from qlrf.ai.answers import Draft, Proposer, ProposerFailed
from qlrf.ai.clients import ModelProposer, ModelProposerFailed
from qlrf.ai.clients.prompts import RETRY_MARKER
from qlrf.ai.taskspec import parse_proposal
from qlrf.ai.tools import AUDIT_KIND
from tests.ai.clients.conftest import KEY, make_client
from tests.fakes.openai_fake import AgentScript, OpenAIFake, tool_results

INTENT = "patch the revoked images in lon1 prod"
GOOD = AgentScript(agent="drift", task_type="remediate_drift",
                   calls=[("query_assets", {"site": "lon1", "environment": "prod"}), ("get_drift_status", {"site": "lon1"})],
                   scope={"site": "lon1", "environment": "prod"})


def _script(scenario: str, **changes) -> AgentScript:
    return AgentScript(**{**GOOD.__dict__, "scenario": scenario, **changes})


def _fail(proposer, ask, fake, scenario: str, **changes) -> ModelProposerFailed:
    fake.script = _script(scenario, **changes)
    with pytest.raises(ProposerFailed) as err:
        proposer.draft(ask(INTENT))
    assert isinstance(err.value, ModelProposerFailed) and "\n" not in str(err.value)
    assert KEY not in str(err.value)
    return err.value


def _audited(audit, conversation: str = "conv-1") -> list[dict]:
    return [r.data for r in audit.records(kind=AUDIT_KIND) if r.subject == f"conversation:{conversation}"]


def test_a_good_conversation_gives_a_grounded_draft_with_a_valid_proposal(fake, proposer, ask, audit):
    fake.script = GOOD
    draft = proposer.draft(ask(INTENT, org="acme"))
    as_proposer: Proposer = proposer  # the protocol the orchestrator takes (checked by type checkers)
    assert as_proposer.source == "model" and isinstance(draft, Draft)
    assert (draft.source, draft.agent, draft.task_type) == ("model", "drift", "remediate_drift")
    results = {r["tool"]: r for r in tool_results(fake.requests[-1].body["messages"])}
    assert [c.tool for c in draft.citations] == ["query_assets", "get_drift_status"]
    assert draft.citations[0].value == results["query_assets"]["matching"]
    assert draft.citations[1].value == results["get_drift_status"]["rows"][0]["vms"]
    assert [(c["name"], c["status"]) for c in draft.tool_calls] == [("query_assets", "ok"), ("get_drift_status", "ok")]
    proposal = parse_proposal(draft.proposal)  # the raw mapping is a valid TaskProposal
    assert (proposal.intent, proposal.scope.site, proposal.scope.environment) == (INTENT, "lon1", "prod")
    assert [c.name for c in proposal.tool_calls] == ["query_assets", "get_drift_status"]
    # Every call went through the ToolBox and its audit log.
    assert [d["tool"] for d in _audited(audit)] == ["query_assets", "get_drift_status"]
    # Usage summed over the conversation: routing + two tool turns + the final answer.
    usage = [r.body for r in fake.requests]
    assert draft.usage["requests"] == 4 == len(usage)
    assert draft.usage["prompt_tokens"] == sum(len(json.dumps(b)) // 4 for b in usage)
    assert draft.usage["cost_usd"] > 0 and draft.usage["provider"] == "openai_compatible"


def test_tool_results_travel_as_tool_messages_never_in_the_system_prompt(fake, proposer, ask):
    fake.script = GOOD
    proposer.draft(ask(INTENT))
    last = fake.requests[-1].body["messages"]
    tool_messages = [m for m in last if m["role"] == "tool"]
    assert len(tool_messages) == 2 and all(m["tool_call_id"] for m in tool_messages)
    row_ids = [row["asset_id"] for row in json.loads(tool_messages[0]["content"])["rows"]]
    assert row_ids
    for rec in fake.requests:
        for m in rec.body["messages"]:
            if m["role"] == "system":
                assert not any(asset in m["content"] for asset in row_ids)
    # The agent's own tools only, as OpenAI function tools.
    offered = [t["function"]["name"] for t in fake.requests[1].body["tools"]]
    assert offered == ["query_assets", "get_drift_status", "get_golden_image", "list_pending_tasks", "query_alerts"]


def test_invalid_json_is_retried_once_with_the_error(fake, proposer, ask):
    fake.script = _script("malformed_once")
    draft = proposer.draft(ask(INTENT))
    retry = [m for m in fake.requests[-1].body["messages"] if m["role"] == "user" and RETRY_MARKER in m["content"]]
    assert len(retry) == 1 and "invalid JSON" in retry[0]["content"]
    assert fake.requests[-1].body["tool_choice"] == "none"
    assert draft.task_type == "remediate_drift" and any("retried" in n for n in draft.notes)


def test_invalid_json_twice_fails_the_draft(fake, proposer, ask):
    err = _fail(proposer, ask, fake, "malformed_twice")
    assert str(err).startswith("schema: the model's answer failed validation twice: invalid JSON")
    assert len(err.tool_calls) == 2 and err.usage.requests == 5


def test_a_proposal_that_sets_autonomy_or_approval_is_refused_naming_the_fields(fake, proposer, ask):
    err = _fail(proposer, ask, fake, "injected_autonomy")
    assert "schema:" in str(err) and "autonomy_mode" in str(err) and "approval_required" in str(err)
    retry = [m for m in fake.requests[-1].body["messages"] if m["role"] == "user" and RETRY_MARKER in m["content"]]
    assert "proposal: autonomy_mode: Extra inputs are not permitted" in retry[0]["content"]


def test_a_widened_scope_reaches_the_pipeline_unchanged(fake, proposer, ask):
    """Schema-valid but wider than asked: the draft carries it raw, so the pipeline's scope and policy
    steps see exactly what the model tried (nothing is narrowed or hidden here)."""
    fake.script = _script("injected_scope")
    draft = proposer.draft(ask(INTENT))
    assert draft.proposal["scope"] == {} and parse_proposal(draft.proposal).scope.size() > 1000


def test_a_proposal_for_another_organisation_is_refused(fake, proposer, ask):
    fake.script = _script("good", scope={"org": "globex", "site": "lon1", "environment": "prod"})
    with pytest.raises(ModelProposerFailed) as err:
        proposer.draft(ask(INTENT, org="acme"))
    assert "proposal.scope.org: 'globex' is not the asking organisation 'acme'" in str(err.value)
    fake.script = _script("good", scope={"org": "ACME", "site": "lon1"})
    assert proposer.draft(ask(INTENT, org="acme", conversation="conv-2")).proposal["scope"]["org"] == "ACME"


def test_numbers_no_tool_returned_fail_the_draft(fake, proposer, ask):
    err = _fail(proposer, ask, fake, "ungrounded")
    assert str(err) == "ungrounded answer: writes 4242, which no tool result of this conversation holds"


def test_a_citation_with_a_wrong_value_fails_the_draft(fake, proposer, ask):
    err = _fail(proposer, ask, fake, "miscited")
    assert str(err).startswith("ungrounded answer: cites query_assets.matching=")
    assert "but the result says" in str(err)


def test_a_refusal_fails_the_draft(fake, proposer, ask):
    assert str(_fail(proposer, ask, fake, "refusing")) == "the model refused: I can't help with changing production systems."


def test_routing_to_a_task_type_the_agent_may_not_propose_fails_after_one_retry(fake, proposer, ask):
    err = _fail(proposer, ask, fake, "bad_route")
    assert str(err) == ("routing: the model's answer failed validation twice: task_type: agent 'cost' may not "
                        "propose 'dr_drill' (allowed: answer, rightsize)")
    assert len(fake.requests) == 2 and err.tool_calls == ()


@pytest.mark.parametrize(("scenario", "reason"), [
    ("unknown_tool", "drop_database: unknown tool 'drop_database'"),
    ("bad_args", "query_assets: arguments do not match the schema"),
    ("repeated", "query_assets: the same call with the same arguments was already made"),
])
def test_a_model_that_keeps_abusing_tools_fails_and_every_call_is_recorded(fake, proposer, ask, audit, scenario, reason):
    err = _fail(proposer, ask, fake, scenario)
    assert str(err).startswith("tool loop: 3 tool calls refused or invalid (") and reason in str(err)
    statuses = [c["status"] for c in err.tool_calls]
    assert statuses.count("ok") + statuses.count("error") + statuses.count("refused") == len(statuses)
    assert len([s for s in statuses if s != "ok"]) == 3
    assert [d["tool"] for d in _audited(audit)] == [c["name"] for c in err.tool_calls]  # every call audited


def test_too_many_tool_calls_stop_the_loop(fake, proposer, ask):
    err = _fail(proposer, ask, fake, "too_many_calls")
    assert str(err) == "tool loop: more than 8 tool calls in one conversation" and len(err.tool_calls) == 8


def test_one_bad_call_the_model_recovers_from_is_recorded_not_fatal(fake, proposer, ask):
    fake.script = _script("bad_args_once")
    draft = proposer.draft(ask(INTENT))
    assert [c["status"] for c in draft.tool_calls] == ["error", "ok", "ok"]
    assert draft.tool_calls[0]["result_summary"].startswith("error: arguments do not match the schema")
    assert [c.status for c in parse_proposal(draft.proposal).tool_calls] == ["error", "ok", "ok"]


def test_a_call_to_a_tool_the_agent_was_not_offered_is_recorded_as_refused(fake, proposer, ask, audit):
    fake.script = _script("unknown_tool_once")
    draft = proposer.draft(ask(INTENT))
    assert [(c["name"], c["status"]) for c in draft.tool_calls] == [("run_shell", "refused"), ("query_assets", "ok"),
                                                                    ("get_drift_status", "ok")]
    assert draft.tool_calls[0]["result_summary"].startswith("refused: unknown tool 'run_shell'")
    assert _audited(audit)[0] == {**_audited(audit)[0], "tool": "run_shell", "status": "error"}  # the ToolBox's own record


def test_a_slow_model_times_out(ask, sleeper):
    with OpenAIFake("agent", api_key=KEY, delay=5, script=_script("slow")) as fake:
        proposer = ModelProposer(make_client(fake, sleeper, QLRF_LLM_TIMEOUT="0.3"))
        with pytest.raises(ModelProposerFailed) as err:
            proposer.draft(ask(INTENT))
    assert str(err.value) == "model openai_compatible gpt-4o-mini: timeout: no answer within 0.3 s"


def test_a_draft_that_overruns_its_time_budget_is_given_up(fake, client, ask):
    ticks = iter(range(0, 10_000, 50))  # every reading of the clock is 50 s later than the last
    client.clock = lambda: float(next(ticks))
    fake.script = GOOD
    with pytest.raises(ModelProposerFailed) as err:
        ModelProposer(client, budget_s=120).draft(ask(INTENT))
    assert str(err.value).startswith("model path: over its 120 s budget after 1 request(s) (200.0 s)")


def test_a_429_then_success_is_waited_out(fake, proposer, ask, sleeper):
    fake.script = GOOD
    fake.faults.add("rate_limit", times=1, retry_after="3")
    draft = proposer.draft(ask(INTENT))
    assert sleeper.pauses == [3.0] and draft.agent == "drift"
    assert [r.status for r in fake.requests][:2] == [429, 200]


def test_persistent_500s_fail_the_draft_without_the_key(fake, proposer, ask, sleeper, logs):
    fake.script = GOOD
    fake.faults.add("server_error", times=None, message=f"proxy saw api_key={KEY}")
    with pytest.raises(ModelProposerFailed) as err:
        proposer.draft(ask(INTENT))
    assert str(err.value).startswith("model openai_compatible gpt-4o-mini: server error: HTTP 500")
    assert str(err.value).endswith("(after 3 attempts)") and len(sleeper.pauses) == 2
    assert err.value.usage.requests == 3 and err.value.usage.cost_usd is None
    logged = "\n".join(r.getMessage() for r in logs.records)
    assert KEY not in str(err.value) and KEY not in logged


def test_anthropic_answers_are_validated_although_its_endpoint_ignores_the_schema(ask, sleeper):
    from qlrf.ai.clients import client_from_env

    with OpenAIFake("agent", api_key=KEY, script=_script("malformed_once")) as fake:
        client = client_from_env({"QLRF_LLM_PROVIDER": "anthropic", "QLRF_LLM_BASE_URL": fake.url + "/",
                                  "ANTHROPIC_API_KEY": KEY, "QLRF_LLM_MODEL": "claude-sonnet-4-5"}, sleep=sleeper)
        draft = ModelProposer(client).draft(ask(INTENT))
        bodies = [r.body for r in fake.requests]
    assert all("response_format" not in b for b in bodies)
    assert draft.usage["provider"] == "anthropic" and any("retried" in n for n in draft.notes)
    assert parse_proposal(draft.proposal).agent == "drift"
