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

With ``api_key`` set, a request without ``Authorization: Bearer <api_key>`` gets 401
``invalid_api_key``. Every request is recorded in ``requests`` as a
:class:`~tests.fakes.base.RecordedRequest` (``path``, lower-cased ``headers``, ``text`` of the body,
parsed ``body``); the server itself is :class:`~tests.fakes.base.HttpFake`.
"""

from __future__ import annotations

import json
import threading
import time

from tests.fakes.base import FakeHandler, HttpFake, RecordedRequest

MODES = ("good", "hallucinate", "invalid_json", "schema_mismatch", "refusal", "rate_limit", "server_error", "slow")


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

    def __init__(self, mode: str = "good", *, api_key: str | None = None, delay: float = 5.0):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        super().__init__()
        self.mode = mode
        self.api_key = api_key
        self.delay = delay
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
        with self._lock:
            self._counter += 1
            n = self._counter
        return 200, {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "usage": {"prompt_tokens": len(json.dumps(body)) // 4, "completion_tokens": len(content or "") // 4,
                      "total_tokens": (len(json.dumps(body)) + len(content or "")) // 4},
            "system_fingerprint": "fp_fake",
        }, {}


def _error(message: str, type_: str, code: str | None) -> dict:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class _OpenAIHandler(FakeHandler):
    fake: OpenAIFake

    def route(self, rec: RecordedRequest) -> None:
        fake = self.fake
        if rec.method != "POST" or rec.path.rstrip("/") != "/v1/chat/completions":
            return self.send_json(404, _error(f"Unknown request URL: {rec.method} {rec.path}", "invalid_request_error",
                                              "unknown_url"))
        if fake.api_key is not None and rec.authorization != f"Bearer {fake.api_key}":
            return self.send_json(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        if not isinstance(rec.body, dict) or not isinstance(rec.body.get("messages"), list):
            return self.send_json(400, _error("We could not parse the JSON body of your request.",
                                              "invalid_request_error", None))
        status, payload, headers = fake.answer(rec.body)
        return self.send_json(status, payload, headers)


OpenAIFake.handler = _OpenAIHandler
