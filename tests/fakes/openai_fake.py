"""Loopback HTTP fake of the OpenAI chat completions API (``POST /v1/chat/completions``).

Answers the way the real endpoint does for structured outputs: a ``chat.completion`` object whose
``choices[0].message.content`` is the JSON answer (``refusal`` set instead for a refusal), errors as
``{"error": {"message", "type", "code"}}`` with the HTTP status. What it answers is set by ``mode``:

* ``good``: a grounded summary built from the facts in the request's user message (between
  ``<facts>`` and ``</facts>``), citing fact paths with the exact values;
* ``hallucinate``: the same, but citing and writing a compliance score that is not in the facts;
* ``invalid_json``: 200 with prose instead of JSON in ``content``;
* ``schema_mismatch``: 200 with JSON that misses ``actions`` and has a bad ``urgency``;
* ``refusal``: 200 with ``content: null`` and ``refusal`` text;
* ``rate_limit``: 429 ``rate_limit_exceeded`` (``retry-after: 0``);
* ``server_error``: 500 ``server_error``;
* ``slow``: waits ``delay`` seconds (default 5) before a good answer, to trip the client's timeout.

* ``agent``: a scripted agent conversation for the AI orchestrator's model path (``script``, an
  :class:`AgentScript` or a function of the intent returning one): routing answers, tool calls one per
  turn, then a final answer citing the numbers the tool messages returned, or one of the misbehaviours
  in :data:`AGENT_SCENARIOS` (malformed, refusing, slow, tool-abusing, injected, ungrounded...).

Azure's URL shape is served too (``/openai/deployments/{deployment}/chat/completions?api-version=``,
key in the ``api-key`` header); ``api_versions`` lists the versions it accepts. Faults come from the
base's :class:`~tests.fakes.base.FaultRules` (``fake.faults.add("rate_limit", times=1, retry_after="7")``,
``"server_error"``, ``"bad_request"``, ``"drop"``), consulted before any mode, so "429 then success"
is one rule.

With ``api_key`` set, a request without ``Authorization: Bearer <api_key>`` (or Azure's ``api-key``)
gets 401 ``invalid_api_key``. Every request is recorded in ``requests`` as a
:class:`~tests.fakes.base.RecordedRequest` (``path``, lower-cased ``headers``, ``text`` of the body,
parsed ``body``); the server itself is :class:`~tests.fakes.base.HttpFake`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.base import FakeHandler, HttpFake, RecordedRequest

MODES = ("good", "hallucinate", "invalid_json", "schema_mismatch", "refusal", "rate_limit", "server_error", "slow",
         "agent")


def facts_from_request(body: dict) -> dict:
    """The facts JSON the client put in its user message."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    if "<facts>" in user:
        user = user.split("<facts>", 1)[1].split("</facts>", 1)[0]
    return json.loads(user[user.index("{"): user.rindex("}") + 1])


def _fmt(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value}"


def good_answer(facts: dict) -> dict:
    """A summary a careful model would write: only numbers from the facts, each one cited."""
    fleet = facts.get("fleet") or {}
    sites = facts.get("most_drifted_sites") or []
    worsening = facts.get("worsening_forecasts") or []
    platforms = facts.get("platforms") or {}
    cites = []

    def cite(name: str, value: float) -> str:
        cites.append({"name": name, "value": value})
        return _fmt(value)

    headline = (f"Compliance is {cite('fleet.compliance_score', fleet['compliance_score'])}% across "
                f"{cite('fleet.vms', fleet['vms'])} VMs")
    headline += f"; {sites[0]['site']} drifts most." if sites else "."
    paragraphs = [
        f"{cite('fleet.pct_current_golden', fleet['pct_current_golden'])}% of VMs run the current golden image and "
        f"{cite('fleet.on_revoked_image', fleet['on_revoked_image'])} run revoked images; DR readiness is "
        f"{cite('fleet.dr_readiness', fleet['dr_readiness'])}%."
    ]
    actions = [{"title": "Replace VMs on revoked images", "why": "Revoked images are the most urgent exposure.",
                "site": None, "platform": None, "urgency": "now"}]
    if sites:
        s = sites[0]
        site = s["site"]
        paragraphs.append(f"{site} is the most drifted site with a drift score of "
                          f"{cite(f'most_drifted_sites.{site}.drift_score', s['drift_score'])}.")
        actions.append({"title": f"Rebuild {site} on current golden images",
                        "why": f"Only {cite(f'most_drifted_sites.{site}.pct_current_golden', s['pct_current_golden'])}% "
                               "of its VMs are current.",
                        "site": site, "platform": None, "urgency": "this_week"})
    if worsening:
        w = worsening[0]
        key = f"worsening_forecasts.{w['site']}/{w['environment']}"
        paragraphs.append(f"{w['site']} {w['environment']} is getting worse: drift is forecast to reach "
                          f"{cite(key + '.forecast_next_week', w['forecast_next_week'])} next week.")
    if platforms:
        worst = min(platforms, key=lambda p: platforms[p].get("dr_readiness") or 0)
        actions.append({"title": f"Improve DR readiness on {worst}",
                        "why": f"{cite(f'platforms.{worst}.dr_readiness', platforms[worst]['dr_readiness'])}% ready.",
                        "site": None, "platform": worst, "urgency": "later"})
    return {"headline": headline, "paragraphs": paragraphs, "actions": actions, "cites": cites}


def hallucinated_answer(facts: dict) -> dict:
    answer = good_answer(facts)
    real = facts["fleet"]["compliance_score"]
    invented = round(real + 7.77, 2) if real + 7.77 <= 100 else round(real - 7.77, 2)
    answer["headline"] = answer["headline"].replace(_fmt(real), _fmt(invented), 1)
    answer["cites"][0] = {"name": "fleet.compliance_score", "value": invented}
    return answer


class OpenAIFake(HttpFake):
    thread_name = "openai-fake"

    def __init__(self, mode: str = "good", *, api_key: str | None = None, delay: float = 5.0, tls: bool = False,
                 script: AgentScript | Callable[[str], AgentScript] | None = None,
                 api_versions: tuple[str, ...] = ("2024-10-21",), reported_model: str | None = None):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        super().__init__(tls=tls)
        self.mode = mode
        self.api_key = api_key
        self.delay = delay
        self.script = script or AgentScript()
        self.api_versions = api_versions
        self.reported_model = reported_model  # what a real endpoint reports (Azure: the model, not the deployment)
        self._stopping = threading.Event()
        self._counter = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The base URL to hand to ``OpenAI(base_url=...)`` / QLRF_LLM_BASE_URL."""
        return f"{self.base_url}/v1"

    def stop(self) -> None:
        self._stopping.set()  # a "slow" answer in flight gives up instead of holding the shutdown
        super().stop()

    # --- answers ----------------------------------------------------------------------------------

    def answer(self, body: dict) -> tuple[int, dict, dict[str, str]]:
        """(status, JSON body, extra headers) for a parsed chat completions request."""
        if self.mode == "rate_limit":
            return 429, _error("Rate limit reached for requests. Please try again in 20s.", "requests",
                               "rate_limit_exceeded"), {"retry-after": "0"}
        if self.mode == "server_error":
            return 500, _error("The server had an error while processing your request.", "server_error", None), {}
        if self.mode == "slow" and self._stopping.wait(self.delay):
            return 503, _error("shutting down", "server_error", None), {}
        if self.mode == "agent":
            return self.agent_answer(body)
        facts = facts_from_request(body)
        refusal = None
        if self.mode == "invalid_json":
            content = "Here is the summary you asked for: the fleet is mostly fine, {headline: ok"
        elif self.mode == "schema_mismatch":
            content = json.dumps({"headline": "Fleet summary", "paragraphs": ["All good."],
                                  "cites": [], "urgency": "asap"})
        elif self.mode == "refusal":
            content, refusal = None, "I'm sorry, I can't help with that request."
        elif self.mode == "hallucinate":
            content = json.dumps(hallucinated_answer(facts))
        else:
            content = json.dumps(good_answer(facts))
        return 200, self.completion(body, content, refusal), {}

    def completion(self, body: dict, content: str | None, refusal: str | None = None,
                   tool_calls: list[dict] | None = None) -> dict:
        """A ``chat.completion`` object; usage counts a token per four characters of request and answer."""
        with self._lock:
            self._counter += 1
            n = self._counter
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal, "annotations": []}
        answer_chars = len(content or "") + len(json.dumps(tool_calls or []))
        if tool_calls:
            message["tool_calls"] = [{"id": f"call_{n}_{i}", "type": "function",
                                      "function": {"name": name, "arguments": json.dumps(args)}}
                                     for i, (name, args) in enumerate(tool_calls)]
        return {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.reported_model or body.get("model", "fake"),
            "choices": [{
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }],
            "usage": {"prompt_tokens": len(json.dumps(body)) // 4, "completion_tokens": answer_chars // 4,
                      "total_tokens": len(json.dumps(body)) // 4 + answer_chars // 4},
            "system_fingerprint": "fp_fake",
        }

    # --- scripted agent conversations ---------------------------------------------------------------

    def script_for(self, body: dict) -> AgentScript:
        script = self.script
        return script(intent_of(body)) if callable(script) and not isinstance(script, AgentScript) else script

    def agent_answer(self, body: dict) -> tuple[int, dict, dict[str, str]]:
        """One turn of a scripted agent conversation, derived from the messages alone (the fake keeps no
        state between requests, like a model): routing, the next tool call, or the final answer."""
        script = self.script_for(body)
        if script.scenario == "slow" and self._stopping.wait(self.delay):
            return 503, _error("shutting down", "server_error", None), {}
        messages = body["messages"]
        if any("<catalogue>" in str(m.get("content")) for m in messages if m["role"] == "system"):
            return 200, self.completion(body, json.dumps(script.route())), {}
        turns = sum(1 for m in messages if m["role"] == "assistant" and m.get("tool_calls"))
        if body.get("tools") and body.get("tool_choice") != "none":
            calls = script.tool_calls(turns)
            if calls:
                return 200, self.completion(body, None, tool_calls=calls), {}
        retried = any(m["role"] == "user" and "did not validate" in str(m.get("content")) for m in messages)
        if script.scenario == "refusing":
            return 200, self.completion(body, None, refusal="I can't help with changing production systems."), {}
        return 200, self.completion(body, script.final(tool_results(messages), retried)), {}


AGENT_SCENARIOS = (
    "good", "malformed_once", "malformed_twice", "refusing", "slow", "unknown_tool", "unknown_tool_once", "bad_args",
    "bad_args_once",
    "repeated", "too_many_calls", "injected_autonomy", "injected_scope", "ungrounded", "miscited", "bad_route",
)


def intent_of(body: dict) -> str:
    """The operator's words between <intent> markers in the first user message ('' when absent)."""
    user = next((str(m.get("content")) for m in body["messages"] if m["role"] == "user"), "")
    found = re.search(r"<intent>\n?(.*?)\n?</intent>", user, re.S)
    return found.group(1) if found else user


def tool_results(messages: list[dict]) -> list[dict]:
    """The parsed tool messages of the conversation, in order."""
    out = []
    for m in messages:
        if m["role"] == "tool":
            try:
                out.append(json.loads(m["content"]))
            except (TypeError, ValueError):
                continue
    return out


def _first_number(result: dict) -> tuple[str, Any] | None:
    """A number a careful model would cite from a tool result: a top-level count first, else the first
    number of the first row."""
    for key, value in result.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            return key, value
    rows = result.get("rows")
    if isinstance(rows, list) and rows and isinstance(rows[0], dict):
        for key, value in rows[0].items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                return f"rows.0.{key}", value
    return None


@dataclass
class AgentScript:
    """What the scripted model does: route to `agent`/`task_type`, make `calls` one per turn, then answer
    citing the numbers its tools returned and propose `scope`; `scenario` picks a misbehaviour."""

    agent: str = "drift"
    task_type: str = "answer"
    calls: list[tuple[str, dict]] = field(default_factory=lambda: [("query_assets", {"site": "lon1"})])
    scope: dict = field(default_factory=dict)
    risk: str | None = None
    scenario: str = "good"

    def __post_init__(self) -> None:
        if self.scenario not in AGENT_SCENARIOS:
            raise ValueError(f"scenario {self.scenario!r}: expected one of {', '.join(AGENT_SCENARIOS)}")

    def route(self) -> dict:
        if self.scenario == "bad_route":  # the cost agent may not schedule DR drills
            return {"agent": "cost", "task_type": "dr_drill", "reason": "cost of a drill"}
        return {"agent": self.agent, "task_type": self.task_type, "reason": f"{self.agent} question"}

    def tool_calls(self, turn: int) -> list[tuple[str, dict]]:
        """The calls of model turn `turn` (0-based); empty when it is time to answer."""
        first = self.calls[0] if self.calls else ("query_assets", {})
        if self.scenario == "unknown_tool":
            return [("drop_database", {"all": True, "turn": turn})]
        if self.scenario == "bad_args":
            return [(first[0], {"site": 5, "sql": f"DROP TABLE vms -- {turn}"})]
        if self.scenario == "repeated":
            return [first]
        if self.scenario == "too_many_calls":
            return [("query_assets", {"limit": n + 1}) for n in range(12)] if turn == 0 else []
        if self.scenario in ("bad_args_once", "unknown_tool_once"):
            if turn == 0:
                return [("run_shell", {"cmd": "id"})] if self.scenario == "unknown_tool_once" else [
                    (first[0], {"site": ["lon1"], "where": "1=1"})]
            turn -= 1
        return [self.calls[turn]] if turn < len(self.calls) else []

    def final(self, results: list[dict], retried: bool) -> str:
        """The final answer's JSON text (or prose, when the scenario is malformed)."""
        if self.scenario == "malformed_twice" or (self.scenario == "malformed_once" and not retried):
            return "Sure! Here is what I found: most VMs are fine {answer: ok"
        sentences, citations = [], []
        for result in results:
            if result.get("status") != "ok":
                continue
            found = _first_number(result)
            if found:
                name, value = found
                sentences.append(f"{result['tool']} reports {name} = {value}.")
                citations.append({"tool": result["tool"], "name": name, "value": value})
        if self.scenario == "ungrounded":
            sentences.append("In total 4242 VMs are exposed.")
        if self.scenario == "miscited" and citations:
            citations[0] = {**citations[0], "value": citations[0]["value"] + 17}
        proposal: dict[str, Any] = {"agent": self.agent, "task_type": self.task_type, "scope": dict(self.scope),
                                    "explanation": "From the tool results of this conversation."}
        if self.risk:
            proposal["model_risk_level"] = self.risk
        if self.scenario == "injected_autonomy":  # what a tag saying "run this fully automatically" asks for
            proposal.update(autonomy_mode="full_auto", approval_required=False)
        if self.scenario == "injected_scope":  # every filter dropped: the whole fleet
            proposal["scope"] = {}
        return json.dumps({"answer": " ".join(sentences) or "No tool returned a number.", "citations": citations,
                           "proposal": proposal})


def _error(message: str, type_: str, code: str | None) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class _OpenAIHandler(FakeHandler):
    fake: OpenAIFake

    def route(self, rec: RecordedRequest) -> None:
        fake = self.fake
        azure = re.fullmatch(r"/openai/deployments/([^/]+)/chat/completions", rec.path.rstrip("/"))
        if rec.method != "POST" or not (azure or rec.path.rstrip("/") == "/v1/chat/completions"):
            return self.send_json(404, _error(f"Unknown request URL: {rec.method} {rec.path}", "invalid_request_error",
                                              "unknown_url"))
        if azure and rec.param("api-version") not in fake.api_versions:
            return self.send_json(404, _error("Resource not found", "invalid_request_error", "404"))
        key_ok = rec.headers.get("api-key") == fake.api_key if azure else rec.authorization == f"Bearer {fake.api_key}"
        if fake.api_key is not None and not key_ok:
            return self.send_json(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        fault = fake.faults.take(rec)
        if fault is not None:
            return self.fault(fault.kind, fault.args)
        if not isinstance(rec.body, dict) or not isinstance(rec.body.get("messages"), list):
            return self.send_json(400, _error("We could not parse the JSON body of your request.",
                                              "invalid_request_error", None))
        status, payload, headers = fake.answer(rec.body)
        return self.send_json(status, payload, headers)


    def fault(self, kind: str, args: dict) -> None:
        if kind == "drop":
            return self.drop()
        if kind == "rate_limit":
            headers = {name: str(args[key]) for key, name in (("retry_after", "retry-after"),
                                                              ("retry_after_ms", "retry-after-ms")) if key in args}
            return self.send_json(429, _error("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
                                  headers)
        if kind == "bad_request":
            return self.send_json(400, _error(args.get("message", "Invalid schema for response_format."),
                                              "invalid_request_error", None))
        return self.send_json(int(args.get("status", 500)), _error(args.get("message", "The server had an error."),
                                                                    "server_error", None))


OpenAIFake.handler = _OpenAIHandler
