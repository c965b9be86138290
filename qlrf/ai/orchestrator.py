"""The AI orchestrator: one question in, a grounded answer or a validated, pending task out.

Each question walks the same steps, each recorded as a :class:`~qlrf.ai.answers.Step` so the user
(and the audit log) sees which one decided::

    screen ─> draft ─> screen_tools ─> schema ─> agent ─> scope ─> policy ─> task

* ``screen``: the intent's own checks (empty, too long, binary, non-English: refused) and injection
  screening (flagged: an answer may still be given, a task never).
* ``draft``: the proposers in order (the model when configured, then the offline router); a
  :class:`~qlrf.ai.answers.ProposerFailed` is a note and the next proposer answers.
* ``screen_tools``: every tool result the proposer saw, screened as it was returned. Flagged data
  stays data: an answer may still be given (flagged), a task never (a human cleans the field first).
* ``schema``: the raw proposal parsed into a TaskProposal (autonomy fields it tried to set are noted
  for the policy, which denies such a task); agent, task type and intent must be the draft's and the
  user's. Never trusted against the catalogue without checking.
* ``agent``: the spec within its agent's task types and tools (:func:`qlrf.ai.agents.violations`).
* ``screen_scope``: the owner and group text of every VM in the resolved scope. No proposer read it,
  so it shaped nothing: flagged and shown to the reviewer (named VM and field), not a refusal, so
  five planted tags cannot block every fleet-wide task.
* ``scope``: resolved against the warehouse day (:mod:`qlrf.ai.scope`); unknown names, an empty
  scope or a scope wider than the intent asked are refused; ``remediate_drift`` takes its plan from
  the planner (:mod:`qlrf.ai.remediate`).
* ``policy``: the Rego ``ai_task`` decision for the sealed spec and, for a plan, the remediation
  gate's decision as for any plan. Anything but "allowed" or "needs approval" refuses.
* ``task``: the task store, as pending approval (24 h, approve/reject/modify bound to the hash).

A refused intent writes nothing but its ``ai_ask`` audit record; every question writes exactly one
(intent hash and length, never the text; agent, task type, source, step outcomes, task id).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from qlrf.ai.agents import Agent, shipped_agents, violations
from qlrf.ai.answers import AskContext, AskResult, Draft, Proposer, ProposerFailed, Source, Step
from qlrf.ai.remediate import drift_plan
from qlrf.ai.scope import (
    SCOPE_STEP,
    DayView,
    ScopeError,
    asked_scope,
    describe,
    newest_day,
    resolve,
    widening,
)
from qlrf.ai.screening import (
    SCREEN_STEP,
    TOOL_SCREEN_STEP,
    Hit,
    check_intent,
    screen_text,
    screen_values,
    summarise,
)
from qlrf.ai.tasks import task_document
from qlrf.ai.taskspec import AGENTS, TASK_TYPES, TaskProposal, TaskSpec, TaskSpecError, higher, parse_proposal
from qlrf.ai.tools.catalogue import READ_ONLY_TOOLS
from qlrf.ai.tools.context import ToolContext
from qlrf.ai.tools.registry import Tool, ToolBox
from qlrf.ai.validation import (
    AI_TASK_DECISION_PATH,
    AUTONOMY_FIELDS,
    POLICY_STEP,
    policy_step,
    proposal_set_autonomy,
)
from qlrf.envparse import environ
from qlrf.remediation.approvals import Task, TaskStore, normalise_identity
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.executor import GateLike
from qlrf.remediation.gate import Gate
from qlrf.remediation.policy import RemediationPolicy
from qlrf.remediation.service import GateUnavailable, plan_decision
from qlrf.settings import Settings
from qlrf.warehouse import PartitionMissing, Warehouse

ASK_AUDIT_KIND = "ai_ask"
DRAFT_STEP, SCHEMA_STEP, AGENT_STEP, TASK_STEP = "draft", "schema", "agent", "task"
SCOPE_SCREEN_STEP = "screen_scope"  # free text of every VM in a task's scope, which no proposer read
STEPS: tuple[str, ...] = (SCREEN_STEP, DRAFT_STEP, TOOL_SCREEN_STEP, SCHEMA_STEP, AGENT_STEP, SCOPE_SCREEN_STEP,
                          SCOPE_STEP, POLICY_STEP, TASK_STEP)


def default_proposers(env: Mapping[str, str] | None = None) -> list[Proposer]:
    """The model proposer when one is configured, then the offline router: whichever are installed.

    Both live in modules built alongside this one (``qlrf.ai.clients``, ``qlrf.ai.router``); a tree
    without them gets no proposer from them (the orchestrator then refuses at ``draft``, saying so).
    Only the module's own absence is tolerated: an import error *inside* it is a bug and propagates.
    """
    proposers: list[Proposer] = []
    try:
        from qlrf.ai.clients import ModelProposer, client_from_env  # type: ignore[attr-defined]
    except ModuleNotFoundError as exc:
        if exc.name != "qlrf.ai.clients":
            raise
    else:
        client = client_from_env(environ(env))
        if client is not None:
            proposers.append(ModelProposer(client))
    try:
        from qlrf.ai.router import OfflineProposer  # type: ignore[attr-defined]
    except ModuleNotFoundError as exc:
        if exc.name != "qlrf.ai.router":
            raise
    else:
        proposers.append(OfflineProposer())
    return proposers


@dataclass
class ScreenedToolBox(ToolBox):
    """A ToolBox that screens every result it hands back; the hits are kept, the result is unchanged."""

    hits: list[Hit] = field(default_factory=list)

    def call(self, name: str, arguments: dict | str | None = None) -> dict:
        result = super().call(name, arguments)
        body = {k: v for k, v in result.items() if k not in ("tool", "status")}
        self.hits.extend(screen_values(body, f"tool {name}"))
        return result


class Refused(Exception):
    """One step refused the intent: ``step`` and ``reason`` go to the user and the audit record."""

    def __init__(self, step: str, reason: str):
        super().__init__(f"{step}: {reason}")
        self.step, self.reason = step, reason


@dataclass
class _Ask:
    """What one question has gathered so far (steps, notes, flags): built up, then turned into a result."""

    intent: str
    requested_by: str
    org: str | None
    conversation: str
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    boxes: list[ScreenedToolBox] = field(default_factory=list)
    draft: Draft | None = None
    intent_hits: list[Hit] = field(default_factory=list)
    scope_hits: list[Hit] = field(default_factory=list)
    spec: TaskSpec | None = None
    task: Task | None = None
    extra_answer: list[str] = field(default_factory=list)

    def step(self, name: str, outcome: str, detail: str = "") -> None:
        self.steps.append(Step(name, outcome, detail))  # type: ignore[arg-type]

    @property
    def tool_hits(self) -> list[Hit]:
        return [hit for box in self.boxes for hit in box.hits]


class Orchestrator:
    """The validation pipeline over the proposers (see the module docstring)."""

    def __init__(
        self,
        *,
        proposers: Sequence[Proposer],
        warehouse: Warehouse,
        store: TaskStore,
        audit: AuditLog,
        policy: RemediationPolicy,
        ai_gate: Gate,
        plan_gate: GateLike,
        tools: Sequence[Tool] = READ_ONLY_TOOLS,
        agents: Mapping[str, Agent] | None = None,
        day: str | None = None,
        today: date | None = None,
        new_conversation: Callable[[], str] = lambda: uuid.uuid4().hex,
    ):
        self.proposers = list(proposers)
        self.warehouse, self.store, self.audit, self.policy = warehouse, store, audit, policy
        self.ai_gate, self.plan_gate = ai_gate, plan_gate
        self.tools = tuple(tools)
        self.agents = agents
        self.day, self.today = day, today
        self.new_conversation = new_conversation

    @classmethod
    def from_env(cls, settings: Settings | None = None, *, today: date | None = None,
                 env: Mapping[str, str] | None = None, proposers: Sequence[Proposer] | None = None) -> Orchestrator:
        """The configured orchestrator: warehouse and databases from settings, gates from the environment.

        ``today`` bounds the warehouse day used (the newest materialised on or before it); the clock
        is the caller's to read.
        """
        settings = settings or Settings.from_env(env)
        audit = AuditLog()
        return cls(
            proposers=default_proposers(env) if proposers is None else proposers,
            warehouse=Warehouse(settings.warehouse),
            store=TaskStore(audit=audit),
            audit=audit,
            policy=RemediationPolicy.load(),
            ai_gate=Gate.from_env(env, decision_path=AI_TASK_DECISION_PATH),
            plan_gate=Gate.from_env(env),
            today=today,
        )

    def close(self) -> None:
        for gate in (self.ai_gate, self.plan_gate):
            close = getattr(gate, "close", None)
            if close is not None:
                close()

    # --- the pipeline ------------------------------------------------------------------------------

    def ask(self, intent: str, *, org: str | None = None, requested_by: str) -> AskResult:
        """Answer ``intent`` or propose its task; refusals name their step. Writes one ``ai_ask`` record."""
        if not isinstance(requested_by, str) or not normalise_identity(requested_by):
            raise ValueError("requested_by: the asker's identity is required (from sign-in or trusted local mode)")
        run = _Ask(intent if isinstance(intent, str) else "", requested_by.strip(), org, self.new_conversation())
        refused: Refused | None = None
        try:
            self._walk(run, intent)
        except Refused as exc:
            refused = exc
            run.step(exc.step, "failed", exc.reason)
        result = self._result(run, refused)
        self._record(run, result)
        return result

    def _walk(self, run: _Ask, intent: Any) -> None:
        problem = check_intent(intent)
        if problem:
            raise Refused(SCREEN_STEP, problem)
        run.intent_hits = screen_text(intent, "intent")
        if run.intent_hits:
            run.step(SCREEN_STEP, "flagged", summarise(run.intent_hits) + ": read-only answers only, no task")
        else:
            run.step(SCREEN_STEP, "passed", f"{len(intent)} characters")

        draft = self._draft(run)
        run.draft = draft
        tool_hits = run.tool_hits + screen_values(list(draft.tool_calls), "draft tool_calls")
        if tool_hits:
            run.step(TOOL_SCREEN_STEP, "flagged", summarise(tool_hits) + ": kept as data; read-only answers only, no task")
        else:
            run.step(TOOL_SCREEN_STEP, "passed", f"{sum(1 for _ in draft.tool_calls)} tool call(s) screened")
        if draft.agent not in AGENTS or draft.task_type not in TASK_TYPES:
            raise Refused(SCHEMA_STEP, f"the {draft.source} draft named agent {draft.agent!r} and task type "
                                       f"{draft.task_type!r}: not in the catalogue")
        if draft.task_type == "answer":
            self._answer(run, draft)
            return
        if run.intent_hits:
            raise Refused(SCREEN_STEP, "the intent carries injection-like text, so no task is created from it "
                                       f"({summarise(run.intent_hits, 1)})")
        if tool_hits:  # estate data that tries to instruct: a human cleans it up before anything acts on that scope
            raise Refused(TOOL_SCREEN_STEP, "the data read for this request carries injection-like text, so no task "
                                            f"is created from it ({summarise(tool_hits, 1)}); clean that field or "
                                            "narrow the request to exclude it")
        self._task(run, draft, bool(tool_hits))

    def _draft(self, run: _Ask) -> Draft:
        if not self.proposers:
            raise Refused(DRAFT_STEP, "no proposer is installed (neither a configured model nor the offline router)")
        ctx = AskContext(intent=run.intent, requested_by=run.requested_by, org=run.org,
                         toolbox_for=lambda agent: self._toolbox(run, agent), conversation=run.conversation)
        failures = []
        for proposer in self.proposers:
            try:
                draft = proposer.draft(ctx)
            except ProposerFailed as exc:
                failures.append(f"{proposer.source} proposer failed: {exc}")
                continue
            run.notes.extend(failures)
            run.notes.extend(draft.notes)
            fallback = f" after {'; '.join(failures)}" if failures else ""
            run.step(DRAFT_STEP, "passed" if not failures else "flagged",
                     f"{draft.source}: agent {draft.agent}, task type {draft.task_type}{fallback}")
            return draft
        run.notes.extend(failures)
        raise Refused(DRAFT_STEP, "no proposer produced a usable draft: " + "; ".join(failures))

    def _toolbox(self, run: _Ask, agent: str) -> ScreenedToolBox:
        catalogue = self.agents if self.agents is not None else shipped_agents()
        allowed = set(catalogue[agent].tools) if agent in catalogue else set()
        box = ScreenedToolBox([t for t in self.tools if t.name in allowed],
                              ToolContext(self.warehouse, self.audit, self.store,
                                          orgs=None if run.org is None else (run.org,)),  # an org's ask reads its org
                              self.audit, run.conversation,
                              actor=f"ai:{run.requested_by}")
        run.boxes.append(box)
        return box

    def _answer(self, run: _Ask, draft: Draft) -> None:
        called = [c.get("name") for c in draft.tool_calls if c.get("status") != "refused"]
        catalogue = self.agents if self.agents is not None else shipped_agents()
        outside = [name for name in called if name not in catalogue[draft.agent].tools]
        run.step(SCHEMA_STEP, "skipped", "read-only answer: no proposal to parse")
        if outside:
            raise Refused(AGENT_STEP, f"agent {draft.agent!r} may not call {', '.join(map(repr, outside))}")
        run.step(AGENT_STEP, "passed", f"agent {draft.agent}: {len(called)} tool call(s) within its tools")
        for name in (SCOPE_SCREEN_STEP, SCOPE_STEP, POLICY_STEP, TASK_STEP):
            run.step(name, "skipped", "read-only answer: no task")

    def _proposal(self, run: _Ask, draft: Draft) -> tuple[TaskProposal, bool]:
        raw = draft.proposal
        if raw is None:
            raise Refused(SCHEMA_STEP, f"the {draft.source} draft chose {draft.task_type!r} but proposed no task")
        set_autonomy = proposal_set_autonomy(raw)
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise Refused(SCHEMA_STEP, f"invalid TaskProposal: not JSON ({exc})") from None
        if isinstance(raw, Mapping):
            raw = {k: v for k, v in raw.items() if k not in AUTONOMY_FIELDS}  # noted for the policy, not parsed
        try:
            proposal = parse_proposal(raw)  # type: ignore[arg-type]
        except TaskSpecError as exc:
            raise Refused(SCHEMA_STEP, str(exc)) from None
        mismatched = [f"{name}: {getattr(proposal, name)!r} is not the draft's {getattr(draft, name)!r}"
                      for name in ("agent", "task_type") if getattr(proposal, name) != getattr(draft, name)]
        if proposal.intent != run.intent:
            mismatched.append("intent: the proposal does not carry the user's words verbatim")
        if mismatched:
            raise Refused(SCHEMA_STEP, "; ".join(mismatched))
        if run.org is not None:
            if proposal.scope.org is not None and normalise_identity(proposal.scope.org) != normalise_identity(run.org):
                raise Refused(SCOPE_STEP, f"scope.org: {proposal.scope.org!r} is not the asker's organisation {run.org!r}")
            proposal = proposal.model_copy(update={"scope": proposal.scope.model_copy(update={"org": run.org})})
        note = "; the proposal tried to set its own autonomy/approval (the policy decides)" if set_autonomy else ""
        run.step(SCHEMA_STEP, "flagged" if set_autonomy else "passed", f"TaskProposal v{proposal.schema_version}{note}")
        return proposal, set_autonomy

    def _task(self, run: _Ask, draft: Draft, tools_flagged: bool) -> None:
        proposal, set_autonomy = self._proposal(run, draft)
        problems = violations(proposal, self.agents)
        if problems:
            raise Refused(AGENT_STEP, "; ".join(problems))
        run.step(AGENT_STEP, "passed", f"agent {proposal.agent} may propose {proposal.task_type}")

        try:
            day = self.day or newest_day(self.warehouse, on_or_before=self.today)
        except ScopeError as exc:
            raise Refused(SCOPE_STEP, str(exc)) from None
        with DayView(self.warehouse, day) as view:
            wider = widening(proposal.scope, asked_scope(run.intent, view.sites()), assets_must_be_named=tools_flagged)
            if wider:
                raise Refused(SCOPE_STEP, "wider than the intent asked: " + "; ".join(wider))
            resolved = resolve(view, proposal.scope, proposal.task_type)
            planted = [hit for asset, field, value in view.free_text(resolved.scope)
                       for hit in screen_text(value, f"{asset}.{field}")] if resolved.ok else []
        if planted:  # never shown to the proposer, so it shaped nothing; the reviewer must still see it
            run.step(SCOPE_SCREEN_STEP, "flagged", summarise(planted) + ": never read by the proposer; shown to the "
                                                   "reviewer, clean these fields")
            run.scope_hits = planted
            run.extra_answer.append("Warning: VMs in this scope carry injection-like text in their tags ("
                                    + summarise(planted, 2) + "); it was not read while proposing. Clean those fields.")
        elif resolved.ok:
            run.step(SCOPE_SCREEN_STEP, "passed", "owner and group of every VM in scope screened")
        if not resolved.ok:
            raise Refused(SCOPE_STEP, "; ".join(resolved.problems))
        scope_note = f"{describe(resolved.scope)} on {day}: {resolved.scope.target_count} target(s)"

        plan = None
        if proposal.task_type == "remediate_drift":
            try:
                plan = drift_plan(self.warehouse, self.policy, resolved.scope, resolved.platforms, day=day,
                                  requested_by=run.requested_by)
            except PartitionMissing as exc:
                raise Refused(SCOPE_STEP, f"cannot plan: {exc}") from None
            if plan is None:
                raise Refused(SCOPE_STEP, f"no drift finding in {describe(resolved.scope)} on {day} (no threshold "
                                          "breached, no revoked image): nothing to remediate")
            scope_note += f"; plan {plan.plan.metadata.id} ({plan.plan.spec.targets.count()} targets)"
            if plan.others:
                scope_note += f"; {len(plan.others)} other plan(s) in scope not proposed"
                run.extra_answer.append("Also in this scope, not proposed (ask again, narrower): " + "; ".join(plan.others))
        run.step(SCOPE_STEP, "passed", scope_note)

        try:
            spec = TaskSpec.from_proposal(proposal.model_copy(update={"scope": resolved.scope}), policy=self.policy,
                                          plan_hash=plan.plan.content_hash if plan else None)
            if plan is not None:  # never lower than the plan's own risk (the planner counts revoked images)
                raised = higher(spec.risk_level, plan.plan.metadata.risk_level)
                spec = TaskSpec.model_validate({**spec.model_dump(exclude={"content_hash"}), "risk_level": raised}).sealed()
        except ValueError as exc:
            raise Refused(SCHEMA_STEP, f"the sealed spec breaks its contract: {exc}") from None
        run.spec = spec
        verdict = policy_step(spec, self.ai_gate, requested_by=run.requested_by, proposal_set_autonomy=set_autonomy)
        if not (verdict.passed or verdict.needs_approval):
            why = "; ".join(verdict.reasons) or str(verdict.outcome)
            raise Refused(POLICY_STEP, f"ai_task policy ({verdict.outcome}): {why}")
        decision = verdict.decision.as_dict()
        detail = f"ai_task: {verdict.outcome}" + (f" ({'; '.join(verdict.approval_reasons)})" if verdict.approval_reasons else "")
        if plan is not None:
            try:
                plan_verdict = plan_decision(self.plan_gate, plan.plan, requested_by=run.requested_by,
                                             fleet_size=plan.fleet_size)
            except GateUnavailable as exc:
                raise Refused(POLICY_STEP, f"remediation gate: {exc}") from None
            if plan_verdict["deny"]:
                raise Refused(POLICY_STEP, "remediation gate denied the plan: " + "; ".join(plan_verdict["deny"]))
            reasons = list(dict.fromkeys([*plan_verdict["approval_reasons"], *verdict.approval_reasons]))
            decision = {**plan_verdict, "allow": False, "requires_approval": True,
                        "approval_reasons": reasons or ["AI tasks wait for a human"], "ai_task": decision}
            detail += "; remediation gate: " + ("allowed" if plan_verdict["allow"] else "needs approval")
        run.step(POLICY_STEP, "passed", detail)

        if plan is not None:
            task = self.store.propose(plan.plan, run.requested_by, decision)
        else:
            task = self.store.propose_ai_task(task_document(spec), run.requested_by, decision)
        run.task = task
        fresh = task.state == "pending_approval" and normalise_identity(task.requested_by) == normalise_identity(
            run.requested_by)
        expires = f", expires {task.expires_at.isoformat()}" if task.expires_at else ""
        run.step(TASK_STEP, "passed" if fresh else "flagged",
                 f"{task.id} {task.state}{expires}" + ("" if fresh else " (this exact task existed already)"))

    # --- the outcome -------------------------------------------------------------------------------

    def _result(self, run: _Ask, refused: Refused | None) -> AskResult:
        draft = run.draft
        if refused is not None:
            answer = f"Refused at the {refused.step} step: {refused.reason}"  # the draft's words are not vouched for
        else:
            answer = draft.answer if draft is not None else ""
            if run.task is not None:
                answer += (f"\n\nProposed task {run.task.id} ({run.task.state}): review it with "
                           f"`qlrf approvals show {run.task.id}`.")
            for line in run.extra_answer:
                answer += f"\n{line}"
        source: Source = draft.source if draft is not None else "offline"
        return AskResult(
            intent=run.intent,
            agent=draft.agent if draft is not None else None,
            task_type=draft.task_type if draft is not None else None,
            answer=answer.strip(),
            source=source,
            citations=draft.citations if draft is not None and refused is None else (),
            tool_calls=draft.tool_calls if draft is not None else (),
            # The sealed spec is shown whenever one was built, refused or not: it says what was judged.
            task_spec=run.spec.model_dump(mode="json") if run.spec is not None else None,
            task_id=run.task.id if run.task is not None else None,
            validation=tuple(run.steps),
            refused_by=refused.step if refused is not None else None,
            notes=tuple(run.notes),
            usage=draft.usage if draft is not None else None,
            extra={"conversation": run.conversation,
                   "injection": [h.as_dict() for h in [*run.intent_hits, *run.tool_hits, *run.scope_hits]][:20]},
        )

    def _record(self, run: _Ask, result: AskResult) -> None:
        self.audit.append(ASK_AUDIT_KIND, run.requested_by, f"conversation:{run.conversation}", {
            "intent_sha256": hashlib.sha256(run.intent.encode("utf-8", "replace")).hexdigest(),
            "intent_chars": len(run.intent),
            "org": run.org,
            "agent": result.agent,
            "task_type": result.task_type,
            "source": result.source,
            "steps": [{"step": s.step, "outcome": s.outcome} for s in result.validation],
            "refused_by": result.refused_by,
            "task_id": result.task_id,
            "injection_flags": len(result.extra.get("injection", [])),
            "notes": list(result.notes)[:5],
        })


__all__ = ["ASK_AUDIT_KIND", "STEPS", "Orchestrator", "Refused", "ScreenedToolBox", "default_proposers"]
