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
``invalid_api_key``. Every request is recorded in ``requests`` as a dict with ``path``, ``headers``
(lower-cased names), ``raw`` (the body text) and ``body`` (parsed JSON or None). Set
``disable_nagle_algorithm`` on the handler (45 ms -> ~1 ms per call, see NOTES-platform.md).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


class OpenAIFake:
    def __init__(self, mode: str = "good", *, api_key: str | None = None, delay: float = 5.0):
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        self.mode = mode
        self.api_key = api_key
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0
        self._lock = threading.Lock()

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to hand to ``OpenAI(base_url=...)`` / QLRF_LLM_BASE_URL."""
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIFake:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="openai-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIFake:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

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


class _Handler(BaseHTTPRequestHandler):
    fake: OpenAIFake
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        fake = self.fake
        fake.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                              "raw": raw, "body": body})
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, _error(f"Unknown request URL: POST {self.path}", "invalid_request_error", "unknown_url"))
            return
        if fake.api_key is not None and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            self._send(401, _error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send(400, _error("We could not parse the JSON body of your request.", "invalid_request_error", None))
            return
        status, payload, headers = fake.answer(body)
        self._send(status, payload, headers)

    def do_GET(self) -> None:
        self._send(404, _error(f"Unknown request URL: GET {self.path}", "invalid_request_error", "unknown_url"))
