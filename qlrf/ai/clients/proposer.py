"""The model path of the AI orchestrator: route, converse with the agent's tools, validate, ground.

:class:`ModelProposer` implements :class:`qlrf.ai.answers.Proposer` (``source="model"``):

1. **Route**: the model picks agent and task type from the catalogue (structured output); the
   pick is re-validated against ``agents.yaml`` (an agent may only take its own task types).
2. **Converse**: the agent's system prompt, its tools only (the ToolBox's MCP definitions as OpenAI
   function tools), and a bounded loop: at most ``max_turns`` model turns, ``max_tool_calls`` calls
   and ``max_bad_calls`` calls the ToolBox answered with an error or a refusal (unknown tool,
   arguments outside the schema, the same call again). Each such result goes back to the model as a
   tool message, and is recorded; a model that keeps at it fails the draft.
3. **Schema** (issue 10 item 6b): the final JSON (answer, citations, proposal) is validated with
   :func:`qlrf.ai.taskspec.parse_proposal` and the agent's record; on failure the model gets the field
   errors once, and a second failure is :class:`ProposerFailed` naming the fields.
4. **Grounding**: every number in the answer and every citation must be in a tool result of this
   conversation (:mod:`qlrf.ai.grounding`, the fleet summary's rules).

Anything else that goes wrong (refusal, timeout, 429/5xx after retries, a cut-off answer) is
:class:`ModelProposerFailed`, one line without secrets, carrying the usage and the tool calls so far
so the orchestrator can record them before it falls back to the offline router. Never a task.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qlrf.ai.agents import Agent, shipped_agents, violations
from qlrf.ai.answers import AskContext, Citation, Draft, ProposerFailed
from qlrf.ai.clients.client import ModelClient, ModelError, ModelReply, ResponseSchema, Usage
from qlrf.ai.clients.prompts import (
    ANSWER_RULES,
    PROMPT_VERSION,
    catalogue_prompt,
    intent_message,
    retry_message,
)
from qlrf.ai.grounding import (
    decimals,
    is_number,
    list_lengths,
    matches,
    numbers_written,
    numeric_leaves,
    text_leaves,
)
from qlrf.ai.taskspec import (
    AGENTS,
    TASK_TYPES,
    TEXT_MAX_CHARS,
    TaskProposal,
    TaskSpecError,
    field_errors,
    parse_proposal,
)
from qlrf.ai.tools.registry import ToolBox

MAX_TURNS = 6
MAX_TOOL_CALLS = 8
MAX_BAD_CALLS = 3
BUDGET_S = 120.0  # the whole draft: beyond this the operator is better served by the offline router now
SUMMARY_CHARS = 300
MAX_ARGUMENT_CHARS = 2000
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NAME = re.compile(r"[\w.@/:-]*[A-Za-z][\w.@/:-]*")


class ModelProposerFailed(ProposerFailed):
    """A failed model draft, with what it cost and which tools it called (for the audit and the result)."""

    def __init__(self, message: str, usage: Usage, tool_calls: tuple[dict[str, Any], ...] = ()) -> None:
        super().__init__(message)
        self.usage = usage
        self.tool_calls = tool_calls


# --- the structured answers the model gives ---------------------------------------------------------


class Route(BaseModel):
    """Which specialist agent takes the request, and which task type it is."""

    model_config = ConfigDict(extra="forbid")

    agent: Literal[AGENTS]  # type: ignore[valid-type]
    task_type: Literal[TASK_TYPES]  # type: ignore[valid-type]
    reason: str  # no maxLength: keep the schema inside what strict structured outputs accept


class Cite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    value: int | float | str


class ParsedAnswer(BaseModel):
    """The final answer as received: the proposal still a raw mapping, so parse_proposal judges it."""

    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, max_length=TEXT_MAX_CHARS)
    citations: list[Cite] = Field(default_factory=list, max_length=50)
    proposal: dict[str, Any]


class FinalAnswer(BaseModel):
    """The agent's final answer: text, the tool values it cites, and its TaskProposal."""

    model_config = ConfigDict(extra="forbid")

    answer: str
    citations: list[Cite]
    proposal: TaskProposal


ROUTE_SCHEMA = ResponseSchema("route", Route.model_json_schema(), strict=True)
FINAL_SCHEMA = ResponseSchema("agent_answer", FinalAnswer.model_json_schema())


def openai_tools(box: ToolBox) -> list[dict[str, Any]]:
    """The ToolBox's MCP-shaped definitions as OpenAI function tools (not strict: optional filters)."""
    return [{"type": "function", "function": {"name": d["name"], "description": d["description"],
                                              "parameters": d["inputSchema"]}} for d in box.definitions()]


class _Invalid(ValueError):
    """An answer that does not validate; the message lists the fields for the retry prompt."""


def _json(content: str | None) -> Any:
    if not content or not content.strip():
        raise _Invalid("empty answer: no JSON object")
    fenced = _FENCE.match(content)
    try:
        return json.loads(fenced.group(1) if fenced else content)
    except ValueError as exc:
        raise _Invalid(f"invalid JSON: {exc}") from None


# --- the conversation -------------------------------------------------------------------------------


@dataclass
class _Conversation:
    """What one draft accumulates: messages, usage, tool calls and their results."""

    client: ModelClient
    budget_s: float | None = None
    started: float = 0.0
    usage: Usage = field(default_factory=Usage)
    calls: list[dict[str, Any]] = field(default_factory=list)
    results: list[tuple[str, dict]] = field(default_factory=list)
    retries: int = 0

    def fail(self, message: str) -> ModelProposerFailed:
        return ModelProposerFailed(message, self.usage, tuple(self.calls))

    def ask(self, messages: list[dict[str, Any]], **kwargs: Any) -> ModelReply:
        elapsed = self.client.clock() - self.started
        if self.budget_s is not None and self.usage.requests and elapsed > self.budget_s:
            raise self.fail(f"model path: over its {self.budget_s:g} s budget after {self.usage.requests} request(s) "
                            f"({elapsed:.1f} s)")
        try:
            reply = self.client.chat(messages, **kwargs)
        except ModelError as exc:
            self.usage = self.usage + exc.usage
            raise self.fail(f"model {self.client.provider.name} {self.client.model}: {exc}") from None
        self.usage = self.usage + reply.usage
        if reply.refusal:
            raise self.fail(f"the model refused: {_clip(reply.refusal)}")
        if reply.finish_reason == "length":
            raise self.fail("the answer was cut off at the token limit (finish_reason=length)")
        if reply.finish_reason == "content_filter":
            raise self.fail("the answer was blocked by the content filter (finish_reason=content_filter)")
        return reply

    def structured(self, messages: list[dict[str, Any]], schema: ResponseSchema, validate: Callable[[Any], Any],
                   step: str, first: ModelReply | None = None, **kwargs: Any) -> Any:
        """A validated structured answer: one retry with the field errors, then ProposerFailed."""
        reply = first or self.ask(messages, response_format=schema, **kwargs)
        for attempt in (1, 2):
            try:
                if reply.tool_calls:
                    raise _Invalid("expected the JSON answer, got tool calls")
                return validate(_json(reply.content))
            except _Invalid as exc:
                if attempt == 2:
                    raise self.fail(f"{step}: the model's answer failed validation twice: {_clip(str(exc), 600)}") from None
                self.retries += 1
                messages.append({"role": "assistant", "content": reply.content or ""})
                messages.append({"role": "user", "content": retry_message(str(exc))})
                reply = self.ask(messages, response_format=schema, **kwargs)
        raise AssertionError("unreachable")

    def call_tool(self, box: ToolBox, offered: set[str], name: str, arguments: str) -> dict:
        """Run one call through the ToolBox (which validates, refuses repeats and audits) and record it.

        A call to a tool the agent was not offered ran nothing: the ToolBox answers it as an error, and
        the record says ``refused``, so the proposal's agent check judges only calls that ran."""
        result = box.call(name, arguments)
        status = result["status"] if name in offered else "refused"
        self.calls.append({"name": name if re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name) else "invalid_tool_name",
                           "arguments": _arguments(arguments), "status": status,
                           "result_summary": _summary({**result, "status": status})})
        if result["status"] == "ok":
            self.results.append((name, result))
        return result


def _clip(text: str, limit: int = 240) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _arguments(raw: str) -> dict[str, Any]:
    """The call's arguments for the record: the JSON object, or its first characters when it is not one
    or too large to keep (a model can send anything; the ToolBox has already refused it)."""
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {"unparsed": raw[:200]}
    if not isinstance(value, dict) or len(raw) > MAX_ARGUMENT_CHARS:
        return {"unparsed": raw[:200]}
    return value


def _summary(result: Mapping[str, Any]) -> str:
    """A short line per call for the TaskProposal's record: status, then the error or the counts."""
    if result["status"] != "ok":
        return _clip(f"{result['status']}: {result.get('error', '')}", SUMMARY_CHARS)
    parts = [f"{k}={v}" for k, v in result.items() if is_number(v)]
    if isinstance(result.get("rows"), list):
        parts.append(f"rows={len(result['rows'])}")
    if result.get("truncated"):
        parts.append("truncated")
    return _clip("ok" + (": " + ", ".join(parts) if parts else ""), SUMMARY_CHARS)


# --- grounding ---------------------------------------------------------------------------------------


def grounding_problems(final: ParsedAnswer, results: list[tuple[str, dict]], intent: str) -> list[str]:
    """Every number the answer writes or cites that no tool result of the conversation holds."""
    by_tool: dict[str, list[dict]] = {}
    for name, result in results:
        by_tool.setdefault(name, []).append(result)
    known = [v for _, r in results for v in numeric_leaves(r).values()] + [n for _, r in results for n in list_lengths(r)]
    labels = {t for _, r in results for t in text_leaves(r) if len(t) <= 200}
    labels |= {m.group(0) for t in list(labels) for m in _ISO_DATE.finditer(t)}
    labels |= set(_NAME.findall(intent))  # names the operator used (ubuntu-22, syd1): not claims
    problems = []
    for written, value, places in numbers_written(final.answer, labels):
        if not any(matches(value, places, fact) for fact in known):
            problems.append(f"writes {written}, which no tool result of this conversation holds")
    for cite in final.citations:
        sources = by_tool.get(cite.tool)
        if not sources:
            problems.append(f"cites {cite.tool}.{cite.name}, but {cite.tool!r} returned no result in this conversation")
            continue
        if isinstance(cite.value, str):
            if not any(cite.value in text_leaves(r) for r in sources):
                problems.append(f"cites {cite.tool}.{cite.name}={cite.value!r}, which {cite.tool} did not return")
            continue
        places = decimals(cite.value) if is_number(cite.value) else None
        at_path = [numeric_leaves(r).get(cite.name) for r in sources]
        exact = [v for v in at_path if v is not None]
        pool = exact or [v for r in sources for v in numeric_leaves(r).values()]
        if not is_number(cite.value) or not any(matches(float(cite.value), places, v) for v in pool):
            said = f" but the result says {exact[0]:g}" if exact else f", which {cite.tool} did not return"
            problems.append(f"cites {cite.tool}.{cite.name}={cite.value}{said}")
    return problems


# --- the proposer ------------------------------------------------------------------------------------


@dataclass
class ModelProposer:
    """A :class:`~qlrf.ai.answers.Proposer` backed by a model client (see the module docstring)."""

    client: ModelClient
    agents: Mapping[str, Agent] | None = None
    max_turns: int = MAX_TURNS
    max_tool_calls: int = MAX_TOOL_CALLS
    max_bad_calls: int = MAX_BAD_CALLS
    budget_s: float | None = BUDGET_S  # wall time for the whole draft (client.clock); None: no limit
    source: Literal["model"] = "model"

    def _agents(self) -> Mapping[str, Agent]:
        return self.agents if self.agents is not None else shipped_agents()

    def draft(self, ctx: AskContext) -> Draft:
        conv = _Conversation(self.client, self.budget_s, self.client.clock())
        route = self.route(ctx, conv)
        agent = self._agents()[route.agent]
        box = ctx.toolbox_for(agent.name)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": agent.system_prompt() + "\n" + ANSWER_RULES},
            {"role": "user", "content": intent_message(ctx.intent, ctx.org, (route.agent, route.task_type))},
        ]
        tools = openai_tools(box)  # once per draft: generating the JSON schemas costs more than a loopback call
        final_reply = self._converse(conv, box, tools, messages)
        final, proposal = conv.structured(messages, FINAL_SCHEMA, lambda doc: self._validate(doc, ctx, route, conv),
                                          "schema", first=final_reply, tools=tools, tool_choice="none")
        problems = grounding_problems(final, conv.results, ctx.intent)
        if problems:
            more = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
            raise conv.fail("ungrounded answer: " + "; ".join(problems[:3]) + more)
        notes = [f"model {self.client.provider.name} {self.client.model} ({PROMPT_VERSION}): "
                 f"{conv.usage.requests} requests, {len(conv.calls)} tool calls"]
        if conv.retries:
            notes.append(f"{conv.retries} answer(s) failed validation and were retried with the field errors")
        if conv.usage.cost_note:
            notes.append(conv.usage.cost_note)
        return Draft(
            source="model", agent=route.agent, task_type=proposal["task_type"], answer=final.answer,
            citations=tuple(Citation(c.tool, c.name, c.value) for c in final.citations),
            tool_calls=tuple(conv.calls), proposal=proposal, notes=tuple(notes),
            usage={**conv.usage.as_dict(), "provider": self.client.provider.name, "model": self.client.model},
        )

    def route(self, ctx: AskContext, conv: _Conversation) -> Route:
        agents = self._agents()
        catalogue = [{"agent": a.name, "purpose": a.purpose, "task_types": list(a.task_types)} for a in agents.values()]
        messages = [{"role": "system", "content": catalogue_prompt(catalogue)},
                    {"role": "user", "content": intent_message(ctx.intent, ctx.org)}]

        def validate(doc: Any) -> Route:
            try:
                route = Route.model_validate(doc)
            except ValidationError as exc:
                raise _Invalid(field_errors(exc)) from None
            allowed = agents[route.agent].task_types
            if route.task_type not in allowed:
                raise _Invalid(f"task_type: agent {route.agent!r} may not propose {route.task_type!r} "
                               f"(allowed: {', '.join(allowed)})")
            return route

        return conv.structured(messages, ROUTE_SCHEMA, validate, "routing")

    def _converse(self, conv: _Conversation, box: ToolBox, tools: list[dict[str, Any]],
                  messages: list[dict[str, Any]]) -> ModelReply:
        """The tool loop; returns the first reply that calls no tool (the final answer to validate)."""
        offered = {t["function"]["name"] for t in tools}
        bad: list[str] = []
        for _turn in range(self.max_turns):
            reply = conv.ask(messages, tools=tools, response_format=FINAL_SCHEMA)
            if not reply.tool_calls:
                return reply
            messages.append(reply.assistant_message())
            for call in reply.tool_calls:
                if len(conv.calls) >= self.max_tool_calls:
                    raise conv.fail(f"tool loop: more than {self.max_tool_calls} tool calls in one conversation")
                result = conv.call_tool(box, offered, call.name, call.arguments)
                # Tool results are data: a tool message, never part of the system prompt.
                messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
                if result["status"] != "ok":
                    bad.append(f"{call.name}: {_clip(result.get('error', result['status']), 120)}")
                    if len(bad) >= self.max_bad_calls:
                        raise conv.fail(f"tool loop: {len(bad)} tool calls refused or invalid ({'; '.join(bad)})")
        raise conv.fail(f"tool loop: no final answer after {self.max_turns} model turns")

    def _validate(self, doc: Any, ctx: AskContext, route: Route, conv: _Conversation) -> tuple[ParsedAnswer, dict]:
        """(answer, proposal mapping) or _Invalid listing every failing field."""
        try:
            final = ParsedAnswer.model_validate(doc)
        except ValidationError as exc:
            raise _Invalid(field_errors(exc)) from None
        proposal = dict(final.proposal)
        if proposal.get("intent", ctx.intent) != ctx.intent:
            raise _Invalid("proposal.intent: must be the operator's words unchanged (leave it out)")
        # Filled by the system from what happened, whatever the model claims.
        proposal.update(intent=ctx.intent, tool_calls=list(conv.calls))
        try:
            parsed = parse_proposal(proposal)
        except TaskSpecError as exc:
            raise _Invalid("proposal: " + str(exc).removeprefix("invalid TaskProposal: ")) from None
        problems = [] if parsed.agent == route.agent else [
            f"proposal.agent: the conversation ran as agent {route.agent!r}, not {parsed.agent!r}"]
        org = parsed.scope.org
        if ctx.org and org is not None and org.casefold() != ctx.org.casefold():
            problems.append(f"proposal.scope.org: {org!r} is not the asking organisation {ctx.org!r}")
        problems += [f"proposal.{p}" for p in violations(parsed, self._agents())]
        if problems:
            raise _Invalid("; ".join(problems))
        return final, proposal
