"""One model client for every provider: a chat call with tools and structured output, retried, costed.

``ModelClient.chat`` sends one chat completion through the ``openai`` package (``OpenAI`` or
``AzureOpenAI``, per :mod:`qlrf.ai.clients.providers`) and returns a :class:`ModelReply`: content,
tool calls, refusal, token usage, estimated cost, latency, attempts. The SDK's own retries are off;
this client retries 408/409/429/5xx and connection failures itself, with exponential backoff and
jitter, honouring ``retry-after`` (``retry-after-ms`` first), because the sleep and the clock must be
injectable (tests never sleep) and each retry must be logged without the key. A timeout is not
retried: a model that did not answer in ``QLRF_LLM_TIMEOUT`` seconds is treated as down, and the
caller falls back to the offline router instead of waiting several times as long.

Every failure is a :class:`ModelError` whose message is one line, scrubbed of the key.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from qlrf.ai.clients.prices import Prices, shipped_prices
from qlrf.ai.clients.providers import Provider
from qlrf.ai.clients.settings import LlmSettings
from qlrf.ai.summary import describe_failure
from qlrf.envparse import redact_secrets

LOG = logging.getLogger("qlrf.ai.clients")
RETRY_STATUS = frozenset({408, 409, 429})  # and every 5xx
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 20.0
MAX_RETRY_AFTER_S = 60.0  # a server asking for a longer pause is treated as down, not waited for
DEFAULT_MAX_TOKENS = 2000


@dataclass(frozen=True)
class Usage:
    """Tokens and estimated cost of one request, or summed over a conversation (``+``)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    requests: int = 0
    cost_usd: float | None = 0.0  # None: at least one request had no price (see cost_note)
    cost_note: str | None = None
    latency_s: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost_usd is None or other.cost_usd is None else round(self.cost_usd + other.cost_usd, 8)
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens,
                     self.total_tokens + other.total_tokens, self.requests + other.requests, cost,
                     self.cost_note or other.cost_note, round(self.latency_s + other.latency_s, 6))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ToolCallRequest:
    """A tool call the model asked for; ``arguments`` is its JSON text, unparsed (the ToolBox judges it)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ModelReply:
    content: str | None
    tool_calls: tuple[ToolCallRequest, ...]
    refusal: str | None
    finish_reason: str | None
    usage: Usage
    model: str
    provider: str
    attempts: int = 1

    def assistant_message(self) -> dict[str, Any]:
        """The reply as the assistant turn to append to the conversation before the tool results."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments}} for c in self.tool_calls]
        return message


@dataclass(frozen=True)
class ResponseSchema:
    """A JSON Schema the answer must match: sent as ``response_format`` where the provider honours it,
    written into the prompt where it does not; validated by the caller either way."""

    name: str
    schema: Mapping[str, Any]
    strict: bool = False

    def response_format(self) -> dict[str, Any]:
        return {"type": "json_schema", "json_schema": {"name": self.name, "schema": dict(self.schema),
                                                       "strict": self.strict}}

    def instruction(self) -> str:
        return ("Reply with exactly one JSON object, no prose and no code fence, matching this JSON Schema "
                f"({self.name}):\n{json.dumps(self.schema, separators=(',', ':'))}")


class ModelError(RuntimeError):
    """A request that did not produce an answer; the message is one line without secrets.

    ``kind``: timeout, rate_limited, server_error, rejected, connection or unexpected."""

    def __init__(self, message: str, kind: str, attempts: int = 1, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.attempts = attempts
        self.usage = usage or Usage()


def sdk_client(settings: LlmSettings, *, max_retries: int | None = None, http_client: Any = None) -> Any:
    """The ``openai`` package client for the configured provider (``None`` when no model is configured)."""
    if not settings.enabled:
        return None
    import openai  # only callers that use a model pay for the import

    retries = settings.max_retries if max_retries is None else max_retries
    extra = {"http_client": http_client} if http_client is not None else {}
    if settings.vendor.sdk == "azure":
        return openai.AzureOpenAI(azure_endpoint=settings.base_url, azure_deployment=settings.deployment,
                                  api_version=settings.api_version, api_key=settings.api_key,
                                  timeout=settings.timeout, max_retries=retries, **extra)
    # A local endpoint may need no key, but the client insists on one: send a placeholder.
    return openai.OpenAI(base_url=settings.base_url, api_key=settings.api_key or "no-key",
                         timeout=settings.timeout, max_retries=retries, **extra)


def _kind(exc: BaseException) -> str:
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited"
    if isinstance(exc, openai.APIStatusError):
        return "server_error" if exc.status_code >= 500 else "rejected"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    return "unexpected"


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the server asked to wait (``retry-after-ms``, else ``retry-after`` in seconds); None when
    absent or unreadable (an HTTP-date is not read: that would need the wall clock, backoff applies)."""
    if not headers:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


@dataclass
class ModelClient:
    """The configured model, with retries, usage and cost; ``sleep``/``clock``/``jitter`` are injectable."""

    settings: LlmSettings
    sdk: Any = None  # the openai package client; built from settings when not given
    prices: Prices | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = random.random
    max_retries: int | None = None  # default: settings.max_retries
    backoff_base: float = BACKOFF_BASE_S
    backoff_cap: float = BACKOFF_CAP_S
    max_retry_after: float = MAX_RETRY_AFTER_S
    log: logging.Logger = field(default=LOG, repr=False)

    def __post_init__(self) -> None:
        if not self.settings.enabled:
            raise ValueError("no model configured: nothing to build a client for")
        if self.sdk is None:
            self.sdk = sdk_client(self.settings, max_retries=0)
        if self.max_retries is None:
            self.max_retries = self.settings.max_retries

    def __repr__(self) -> str:
        return f"ModelClient({self.settings.describe()})"

    @property
    def provider(self) -> Provider:
        return self.settings.vendor

    @property
    def model(self) -> str:
        return self.settings.deployment or self.settings.model

    def describe(self) -> str:
        return self.settings.describe()

    # --- one request ------------------------------------------------------------------------------

    def request(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None,
                response_format: ResponseSchema | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
                tool_choice: str | None = None) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for this provider's capabilities."""
        provider = self.provider
        messages = [dict(m) for m in messages]
        kwargs: dict[str, Any] = {"model": self.model, provider.max_tokens_param: max_tokens}
        if response_format is not None:
            if provider.structured_outputs:
                kwargs["response_format"] = response_format.response_format()
            else:  # the endpoint ignores response_format: say it in the prompt; the caller re-validates
                messages.append({"role": "system", "content": response_format.instruction()})
        if tools:
            if not provider.tool_calling:
                raise ModelError(f"{provider.name} does not support tool calling", "rejected", 0)
            kwargs["tools"] = [dict(t) for t in tools]
            if tool_choice is not None:
                kwargs["tool_choice"] = tool_choice
        kwargs["messages"] = messages
        return kwargs

    def chat(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None,
             response_format: ResponseSchema | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
             tool_choice: str | None = None) -> ModelReply:
        """One answer from the model (after retries), or :class:`ModelError`. ``tool_choice="none"``
        keeps the tools visible (the conversation holds their calls) but asks for text."""
        kwargs = self.request(messages, tools, response_format, max_tokens, tool_choice)
        started = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                completion = self.sdk.chat.completions.create(**kwargs)
                break
            except Exception as exc:  # every SDK failure becomes one scrubbed line
                message = self._describe(exc)
                delay = self._delay(exc, attempt)
                if delay is None:
                    elapsed = round(self.clock() - started, 6)
                    tries = f" (after {attempt} attempts)" if attempt > 1 else ""
                    self.log.warning("model %s %s failed: %s%s", self.provider.name, self.model, message, tries)
                    raise ModelError(f"{message}{tries}", _kind(exc), attempt,
                                     Usage(requests=attempt, latency_s=elapsed, cost_usd=None,
                                           cost_note="no answer, cost unknown")) from None
                self.log.warning("model %s %s: %s; retry %d of %d in %.2f s", self.provider.name, self.model,
                                 message, attempt, self.max_retries, delay)
                self.sleep(delay)
        reply = self._reply(completion, attempt, round(self.clock() - started, 6))
        u = reply.usage
        self.log.info("model %s %s: %d+%d tokens, cost %s, %.2f s, %d attempt(s)", reply.provider, reply.model,
                      u.prompt_tokens, u.completion_tokens, "unknown" if u.cost_usd is None else f"${u.cost_usd:.6f}",
                      u.latency_s, attempt)
        return reply

    def _describe(self, exc: BaseException) -> str:
        return redact_secrets(describe_failure(exc, self.settings.timeout), [self.settings.api_key])

    def _delay(self, exc: BaseException, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None when this failure is final."""
        import openai

        if attempt > (self.max_retries or 0):
            return None
        if isinstance(exc, openai.APITimeoutError):
            return None  # slow is down: the caller falls back instead of waiting again
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code not in RETRY_STATUS and exc.status_code < 500:
                return None
            asked = retry_after(exc.response.headers if exc.response is not None else None)
            if asked is not None:
                return asked if asked <= self.max_retry_after else None
        elif not isinstance(exc, openai.APIConnectionError):
            return None
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * self.jitter())  # "equal jitter": never zero, never above the ceiling

    def _reply(self, completion: Any, attempts: int, latency: float) -> ModelReply:
        model = getattr(completion, "model", None) or self.model
        usage = getattr(completion, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        total = int(getattr(usage, "total_tokens", 0) or 0) or prompt + completion_tokens
        if usage is None:
            cost, note = None, "the endpoint reported no token usage: cost unknown"
        else:
            cost, note = (self.prices or shipped_prices()).cost(model, prompt, completion_tokens)
        counted = Usage(prompt, completion_tokens, total, 1, cost, note, latency)
        choices = getattr(completion, "choices", None) or []
        if not choices:
            return ModelReply(None, (), None, "no_choices", counted, model, self.provider.name, attempts)
        choice = choices[0]
        message = choice.message
        calls = tuple(ToolCallRequest(c.id, c.function.name, c.function.arguments or "")
                      for c in (message.tool_calls or []) if getattr(c, "type", "function") == "function")
        return ModelReply(message.content, calls, getattr(message, "refusal", None), choice.finish_reason,
                          counted, model, self.provider.name, attempts)
