"""ModelClient through the real openai package against the loopback fake, for every provider:
URL shapes and headers, structured output or its prompt fallback, tool calls, retries with an
injected sleeper, timeouts, usage and cost, and a planted key that never appears in errors or logs."""

from __future__ import annotations

import json
import ssl

import httpx
import pytest

from qlrf.ai.clients import ModelClient, ModelError, ResponseSchema, client_from_env, load_prices, sdk_client
from qlrf.ai.clients.proposer import ROUTE_SCHEMA
from qlrf.ai.clients.settings import settings_from_env
from tests.ai.clients.conftest import KEY, make_client
from tests.fakes.openai_fake import AgentScript, OpenAIFake

ROUTING = [{"role": "system", "content": "You route.\n<catalogue>\n[]\n</catalogue>"},
           {"role": "user", "content": "<intent>\nwhich VMs drift in lon1?\n</intent>"}]
TOOLS = [{"type": "function", "function": {"name": "query_assets", "description": "List VMs",
                                           "parameters": {"type": "object", "properties": {"site": {"type": "string"}}}}}]
AGENT_TURN = [{"role": "system", "content": "You are the drift agent."},
              {"role": "user", "content": "<intent>\nwhich VMs drift in lon1?\n</intent>"}]


def _price(model: str, prompt: int, completion: int) -> float:
    price = load_prices().models[model]
    return round((prompt * price.input + completion * price.output) / 1_000_000, 8)


def test_openai_compatible_structured_answer_usage_and_cost(fake, client, logs):
    reply = client.chat(ROUTING, response_format=ROUTE_SCHEMA)
    assert json.loads(reply.content) == {"agent": "drift", "task_type": "answer", "reason": "drift question"}
    [rec] = fake.requests
    assert rec.path == "/v1/chat/completions" and rec.authorization == f"Bearer {KEY}"
    assert rec.body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "route", "schema": ROUTE_SCHEMA.schema, "strict": True}}
    assert rec.body["max_tokens"] == 2000 and "max_completion_tokens" not in rec.body
    u = reply.usage
    assert u.prompt_tokens == len(json.dumps(rec.body)) // 4  # what the endpoint reported (the fake: chars / 4)
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens and u.requests == 1 and u.completion_tokens > 0
    assert u.cost_usd == _price("gpt-4o-mini", u.prompt_tokens, u.completion_tokens) and u.cost_usd > 0
    assert (reply.model, reply.provider, reply.attempts) == ("gpt-4o-mini", "openai_compatible", 1)
    assert any(f"{u.prompt_tokens}+{u.completion_tokens} tokens" in r.getMessage() for r in logs.records)


def test_an_unlisted_model_has_an_unknown_cost_never_a_guess(fake, sleeper):
    client = make_client(fake, sleeper, QLRF_LLM_MODEL="llama3.1:8b")
    usage = client.chat(ROUTING, response_format=ROUTE_SCHEMA).usage
    assert usage.cost_usd is None and usage.prompt_tokens > 0
    assert usage.cost_note == "no price for model 'llama3.1:8b' in model_prices.yaml: cost unknown"
    assert (usage + usage).cost_usd is None  # one unknown makes the sum unknown


def test_openai_provider_sends_max_completion_tokens_and_parses_tool_calls(fake, sleeper):
    client = make_client(fake, sleeper, QLRF_LLM_PROVIDER="openai")
    fake.script = AgentScript(calls=[("query_assets", {"site": "lon1"})])
    reply = client.chat(AGENT_TURN, tools=TOOLS)
    [call] = reply.tool_calls
    assert (call.name, json.loads(call.arguments)) == ("query_assets", {"site": "lon1"})
    assert reply.finish_reason == "tool_calls" and reply.content is None
    body = fake.requests[-1].body
    assert body["tools"] == TOOLS and body["max_completion_tokens"] == 2000 and "max_tokens" not in body
    assert reply.assistant_message()["tool_calls"][0]["function"] == {"name": "query_assets",
                                                                     "arguments": '{"site": "lon1"}'}


def test_azure_over_https_uses_the_deployment_url_and_the_api_key_header(sleeper):
    with OpenAIFake("agent", api_key=KEY, tls=True, reported_model="gpt-4o-mini-2024-07-18") as fake:
        settings = settings_from_env({"QLRF_LLM_PROVIDER": "azure", "AZURE_OPENAI_ENDPOINT": fake.base_url,
                                      "AZURE_OPENAI_API_KEY": KEY, "AZURE_OPENAI_DEPLOYMENT": "rf-4o",
                                      "QLRF_LLM_TIMEOUT": "5"})
        url = fake.base_url
        with httpx.Client(verify=ssl.create_default_context(cafile=fake.ca_path)) as http:
            client = ModelClient(settings, sdk=sdk_client(settings, max_retries=0, http_client=http), sleep=sleeper)
            reply = client.chat(ROUTING, response_format=ROUTE_SCHEMA)
        [rec] = fake.requests
    assert url.startswith("https://")
    assert rec.path == "/openai/deployments/rf-4o/chat/completions" and rec.param("api-version") == "2024-10-21"
    assert rec.headers["api-key"] == KEY and rec.body["model"] == "rf-4o"
    assert rec.body["response_format"]["json_schema"]["name"] == "route"
    # Azure reports the underlying model; its dated snapshot is priced as the undated name.
    assert reply.model == "gpt-4o-mini-2024-07-18" and reply.provider == "azure"
    assert reply.usage.cost_usd == _price("gpt-4o-mini", reply.usage.prompt_tokens, reply.usage.completion_tokens)


def test_anthropic_gets_the_schema_in_the_prompt_because_its_endpoint_ignores_response_format(sleeper):
    with OpenAIFake("agent", api_key=KEY) as fake:
        client = client_from_env({"QLRF_LLM_PROVIDER": "anthropic", "QLRF_LLM_BASE_URL": fake.url + "/",
                                  "ANTHROPIC_API_KEY": KEY, "QLRF_LLM_MODEL": "claude-sonnet-4-5"}, sleep=sleeper)
        reply = client.chat(ROUTING, response_format=ROUTE_SCHEMA)
        [rec] = fake.requests
    assert rec.path == "/v1/chat/completions" and rec.authorization == f"Bearer {KEY}"
    assert "response_format" not in rec.body and rec.body["max_tokens"] == 2000
    instruction = rec.body["messages"][-1]
    assert instruction["role"] == "system" and json.dumps(ROUTE_SCHEMA.schema, separators=(",", ":")) in instruction["content"]
    assert json.loads(reply.content)["agent"] == "drift" and reply.provider == "anthropic"
    assert reply.usage.cost_usd == _price("claude-sonnet-4-5", reply.usage.prompt_tokens, reply.usage.completion_tokens)


# --- retries ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "value", "pause"), [("retry_after", "7", 7.0), ("retry_after_ms", "1500", 1.5)])
def test_a_429_waits_as_long_as_the_server_asks(fake, client, sleeper, header, value, pause):
    fake.faults.add("rate_limit", times=1, **{header: value})
    reply = client.chat(ROUTING, response_format=ROUTE_SCHEMA)
    assert sleeper.pauses == [pause] and reply.attempts == 2
    assert [r.status for r in fake.requests] == [429, 200]


def test_5xx_and_dropped_connections_back_off_exponentially(fake, client, sleeper):
    fake.faults.add("server_error", times=1, status=503)
    fake.faults.add("drop", times=1)
    reply = client.chat(ROUTING, response_format=ROUTE_SCHEMA)
    assert sleeper.pauses == [0.5, 1.0] and reply.attempts == 3  # base 0.5 s doubling; jitter fixed at its top


def test_backoff_jitter_stays_between_half_and_the_whole_ceiling(fake, sleeper):
    low = make_client(fake, sleeper)
    low.jitter = lambda: 0.0
    fake.faults.add("server_error", times=2)
    low.chat(ROUTING, response_format=ROUTE_SCHEMA)
    assert sleeper.pauses == [0.25, 0.5]


def test_persistent_5xx_gives_up_after_the_retries_with_one_clean_line(fake, client, sleeper, logs):
    fake.faults.add("server_error", times=None, message=f"upstream echoed Authorization: Bearer {KEY}")
    with pytest.raises(ModelError) as err:
        client.chat(ROUTING, response_format=ROUTE_SCHEMA)
    message = str(err.value)
    assert err.value.kind == "server_error" and err.value.attempts == 3 and len(sleeper.pauses) == 2
    assert message.startswith("server error: HTTP 500 from the model endpoint") and message.endswith("(after 3 attempts)")
    assert "\n" not in message
    _assert_no_key(message, logs)


def test_a_400_is_not_retried(fake, client, sleeper):
    fake.faults.add("bad_request", times=None)
    with pytest.raises(ModelError) as err:
        client.chat(ROUTING, response_format=ROUTE_SCHEMA)
    assert err.value.kind == "rejected" and sleeper.pauses == [] and len(fake.requests) == 1
    assert "request rejected: HTTP 400" in str(err.value)


def test_a_retry_after_beyond_the_limit_is_not_waited_for(fake, client, sleeper):
    fake.faults.add("rate_limit", times=None, retry_after="600")
    with pytest.raises(ModelError) as err:
        client.chat(ROUTING, response_format=ROUTE_SCHEMA)
    assert err.value.kind == "rate_limited" and sleeper.pauses == [] and len(fake.requests) == 1


def test_a_timeout_is_reported_and_not_retried(sleeper):
    with OpenAIFake("agent", api_key=KEY, delay=5, script=AgentScript(scenario="slow")) as fake:
        client = make_client(fake, sleeper, QLRF_LLM_TIMEOUT="0.3")
        with pytest.raises(ModelError) as err:
            client.chat(ROUTING, response_format=ROUTE_SCHEMA)
        assert len(fake.requests) == 1
    assert err.value.kind == "timeout" and str(err.value) == "timeout: no answer within 0.3 s" and sleeper.pauses == []


def test_a_wrong_key_fails_without_quoting_it(sleeper, logs):
    with OpenAIFake("agent", api_key="the-right-key-000") as fake:
        client = make_client(fake, sleeper)
        with pytest.raises(ModelError) as err:
            client.chat(ROUTING, response_format=ROUTE_SCHEMA)
    assert err.value.kind == "rejected" and "HTTP 401" in str(err.value)
    _assert_no_key(str(err.value), logs)
    assert KEY not in repr(client) and KEY not in client.describe()


def test_response_schema_instruction_and_format_carry_the_same_schema():
    schema = ResponseSchema("x", {"type": "object", "properties": {"a": {"type": "integer"}}}, strict=True)
    assert schema.response_format()["json_schema"]["schema"] == json.loads(schema.instruction().split("\n", 1)[1])


def _assert_no_key(message: str, logs) -> None:
    assert KEY not in message and KEY[:12] not in message
    text = "\n".join(r.getMessage() for r in logs.records)
    assert KEY not in text and KEY[:12] not in text
