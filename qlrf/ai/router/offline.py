"""The offline proposer: intent -> route -> parameters -> the agent's tool plan -> a templated answer.

It is the embedded default (no model at all) and the fallback whenever a model fails, so it must
never guess: an unknown or ambiguous site or family is said and nothing is proposed; a tool error
is said plainly; every number in the answer is a cited tool value (see
:mod:`qlrf.ai.router.grounding`). It reads the warehouse only through the ToolBox it is given
(``ctx.toolbox_for(agent)``), so the calls are validated, capped and audited like a model's.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from qlrf.ai.agents import shipped_agents
from qlrf.ai.answers import AskContext, Draft
from qlrf.ai.router import answer_templates as templates
from qlrf.ai.router.matcher import Route, route
from qlrf.ai.router.params import Params, Vocabulary, VocabularyError, recognise, vocabulary_from
from qlrf.ai.router.plans import calls, shipped_plans
from qlrf.ai.taskspec import TEXT_MAX_CHARS
from qlrf.ai.tools.context import ToolContext

SUMMARY_MAX_CHARS = 300


class OfflineProposer:
    """The :class:`~qlrf.ai.answers.Proposer` with no model (``source = "offline"``).

    ``today`` anchors relative dates ("yesterday"); without it such words are recognised but not
    resolved, and the tools read the newest materialised day."""

    source = "offline"

    def __init__(self, today: date | None = None) -> None:
        self.today = today
        self._vocabularies: dict[tuple, Vocabulary] = {}

    def draft(self, ctx: AskContext) -> Draft:
        routed = route(ctx.intent, None, self.today)
        box = ctx.toolbox_for(routed.agent)
        notes = [f"route: {routed.agent}/{routed.task_type} confidence {routed.confidence:.2f}; next: "
                 + ", ".join(f"{a}/{t} {s:.2f}" for a, t, s in routed.alternatives)]
        try:
            vocabulary = self.vocabulary(box.context)
        except VocabularyError as exc:
            return self._plain(ctx, routed, notes, f"I cannot look anything up: {exc}.")
        params = recognise(ctx.intent, vocabulary, self.today)
        notes += [f"read {written!r} as site {site!r}" for written, site in params.corrected]
        if params.blocked:
            return self._plain(ctx, routed, notes, _blocked_text(params, vocabulary))
        if routed.unsure:
            return self._unsure(ctx, routed, notes)
        made: list[tuple[str, dict, dict]] = []
        for step in shipped_plans().for_route(routed.agent, routed.task_type):
            for arguments in calls(step, params, vocabulary):
                made.append((step.tool, arguments, box.call(step.tool, arguments)))
        writer = templates.Writer()
        _write(writer, routed, params, made)
        tool_calls = tuple(_tool_call(tool, args, result) for tool, args, result in made)
        proposal = _proposal(ctx, routed, params, tool_calls, writer)
        return Draft(source="offline", agent=routed.agent, task_type=routed.task_type, answer="\n".join(writer.lines),
                     citations=tuple(writer.citations), tool_calls=tool_calls, proposal=proposal, notes=tuple(notes))

    def vocabulary(self, context: ToolContext) -> Vocabulary:
        """The day's names, read once per warehouse and newest day (a new day re-reads them)."""
        wh = context.warehouse
        key = (wh.root, context.platforms, tuple(wh.dates("drift_scores")[-1:]), tuple(wh.dates("inventory")[-1:]))
        if key not in self._vocabularies:
            self._vocabularies[key] = vocabulary_from(wh, context.platforms)
        return self._vocabularies[key]

    def _plain(self, ctx: AskContext, routed: Route, notes: list[str], text: str) -> Draft:
        """An answer with no tool call and nothing proposed (unknown names, no warehouse)."""
        answer = f"{templates.HEADER}: {routed.agent} agent. {text}"
        return Draft(source="offline", agent=routed.agent, task_type="answer", answer=answer, proposal=None,
                     notes=tuple(notes))

    def _unsure(self, ctx: AskContext, routed: Route, notes: list[str]) -> Draft:
        agent = shipped_agents()[routed.agent]
        answer = (f"{templates.HEADER}: I am not sure what you are asking. The closest match is the {agent.name} "
                  f"agent: {agent.purpose} It can answer questions or propose: {', '.join(agent.task_types)}. "
                  "Name a site, environment, platform, image family or package, or rephrase the request.")
        proposal = {"intent": ctx.intent, "agent": routed.agent, "task_type": "answer", "scope": _scope(ctx, Params()),
                    "tool_calls": [], "explanation": "unsure of the intent: answered, nothing proposed"}
        return Draft(source="offline", agent=routed.agent, task_type="answer", answer=answer, proposal=proposal,
                     notes=(*notes, "below the confidence floor: answered, nothing proposed"))


def _blocked_text(params: Params, vocabulary: Vocabulary) -> str:
    parts = []
    if params.unknown_site:
        parts.append(f"I don't know site {params.unknown_site!r}; known sites: {vocabulary.known_sites()}.")
    if params.ambiguous_site:
        written, candidates = params.ambiguous_site
        parts.append(f"Site {written!r} is ambiguous: it could be {' or '.join(candidates)}; please name it exactly.")
    if params.unknown_family:
        parts.append(f"I don't know image family {params.unknown_family!r}; known families: "
                     f"{vocabulary.known_families()}.")
    return " ".join(parts) + " Nothing was looked up and no task is proposed."


def _write(w: templates.Writer, routed: Route, params: Params, made: list[tuple[str, dict, dict]]) -> None:
    scope = _scope_text(params, w, made)
    kind = "answer" if routed.task_type == "answer" else f"proposes {routed.task_type}"
    w.say(f"{templates.HEADER}: {routed.agent} agent, {kind}, scope {scope}"
          + "".join(f" (read {written!r} as {site})" for written, site in params.corrected) + ".")
    day = next(((tool, r["facts"]["day"]) for tool, _, r in made
                if r.get("status") == "ok" and isinstance(r.get("facts"), dict) and r["facts"].get("day")), None)
    if day:
        w.say(f"- Data of {w.v(day[0], 'facts.day', day[1])}.")
    for tool in dict.fromkeys(tool for tool, _, _ in made):
        templates.TEMPLATES[tool](w, made, scope, params.count)
    templates.errors(w, made)
    if not made:
        w.say("- Nothing to look up for this request: name an image family, package or VM to narrow it.")
    if routed.task_type != "answer":
        w.say(f"Proposed task: {routed.task_type} for {scope}. It is a proposal only: it goes through validation and "
              "waits for a human approval; nothing has run.")


def _scope_text(params: Params, w: templates.Writer, made: list[tuple[str, dict, dict]]) -> str:
    """The scope as the answer states it; a family, package or VM id is cited as the tool argument it became."""
    parts = [p for p in (params.site, params.environment, params.platform) if p]
    for label, key, value in (("family", "family", params.family), ("family", "image_family", params.family),
                              ("package", "package", params.package),
                              ("VM", "asset_id", params.asset_ids[0] if params.asset_ids else None)):
        if value is None or any(part.startswith(f"{label} ") for part in parts):
            continue
        call = next((c for c in made if c[1].get(key) == value), None)
        if call is not None:
            parts.append(f"{label} {w.v(call[0], f'arguments.{key}', value)}")
    return " ".join(parts) if parts else "the whole fleet"


def _scope(ctx: AskContext, params: Params) -> dict[str, Any]:
    scope: dict[str, Any] = {k: v for k, v in (("org", ctx.org), ("site", params.site),
                                               ("environment", params.environment), ("platform", params.platform))
                             if v is not None}
    if params.asset_ids:
        scope["asset_ids"] = list(params.asset_ids)
    return scope


def _tool_call(tool: str, arguments: dict, result: dict) -> dict[str, Any]:
    """The ToolCall-shaped record of one call: what was asked, its status, a short summary."""
    if result.get("status") == "ok":
        rows = result.get("rows")
        summary = f"ok: {len(rows)} rows" if isinstance(rows, list) else "ok"
        if result.get("truncated"):
            summary += f" (truncated from {result['truncated']['rows_total']})"
    else:
        summary = f"{result.get('status')}: {result.get('error', '')}"
    return {"name": tool, "arguments": json.loads(json.dumps(arguments)), "status": result.get("status", "error"),
            "result_summary": summary[:SUMMARY_MAX_CHARS]}


def _proposal(ctx: AskContext, routed: Route, params: Params, tool_calls: tuple[dict, ...],
              writer: templates.Writer) -> dict[str, Any]:
    """The TaskProposal-shaped dict: what may be proposed, never autonomy or approval (the system decides)."""
    explanation = " ".join(line.removeprefix("- ") for line in writer.lines[1:])[:TEXT_MAX_CHARS]
    return {"intent": ctx.intent, "agent": routed.agent, "task_type": routed.task_type, "scope": _scope(ctx, params),
            "tool_calls": [dict(c) for c in tool_calls], "explanation": explanation}
