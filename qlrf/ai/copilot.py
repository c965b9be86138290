"""What a chat front end (the dashboard's Copilot page) needs around the orchestrator.

Why a module of its own: the page must stay thin, and three rules are easy to get wrong in a page:

* nobody without an identity may create a task, yet they may still ask read-only questions, so
  the question goes through the whole pipeline and only the ``task`` step refuses (the user sees
  that the action would need sign-in, and nothing is written but the ``ai_ask`` audit record);
* the model's provider and model name may be shown, never its key or endpoint credentials;
* suggested prompts come from the day's proactive insights first, then a few fixed read-only ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from qlrf.remediation.reviewer import ENV_LOCAL_USER

if TYPE_CHECKING:  # the orchestrator's imports cost seconds: a page showing only prompts and status skips them
    from qlrf.ai.answers import AskResult
    from qlrf.ai.orchestrator import Orchestrator

# Asked by the page on behalf of nobody in particular: recorded in the audit log as this actor.
ANONYMOUS = "dashboard:anonymous"
SIGN_IN_REQUIRED = (f"action requests need an identity: sign in (or set {ENV_LOCAL_USER} for the trusted "
                    "local mode); read-only questions are answered without one")

# Read-only questions every day can answer (the insights add the day's own suggestions first).
STARTER_PROMPTS: tuple[str, ...] = (
    "which sites have the most VMs on revoked images?",
    "what is the compliance pass rate in prod?",
    "show DR readiness by site",
    "which approvals are pending?",
)


class _SignInRequiredStore:
    """A task store that reads like the real one but refuses to create a task (no identity to own it,
    or an identity without the role to propose: `refusal` says which, `on_refuse` records it)."""

    def __init__(self, store: Any, refusal: str = SIGN_IN_REQUIRED, on_refuse: Callable[[], None] | None = None):
        self._store = store
        self._refusal = refusal
        self._on_refuse = on_refuse

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def propose(self, *_: Any, **__: Any) -> Any:
        self._refuse()

    def propose_ai_task(self, *_: Any, **__: Any) -> Any:
        self._refuse()

    def _refuse(self) -> None:
        if self._on_refuse is not None:
            self._on_refuse()
        _refuse(self._refusal)


def _refuse(message: str = SIGN_IN_REQUIRED) -> None:
    from qlrf.ai.orchestrator import TASK_STEP, Refused

    raise Refused(TASK_STEP, message)


def read_only(orchestrator: Orchestrator, refusal: str = SIGN_IN_REQUIRED,
              on_refuse: Callable[[], None] | None = None) -> Orchestrator:
    """The same orchestrator (proposers, warehouse, gates) whose task step refuses with `refusal`: for
    askers with no identity, or (issue 14) a viewer, whose answers are read-only."""
    from qlrf.ai.orchestrator import Orchestrator

    o = orchestrator
    return Orchestrator(proposers=o.proposers, warehouse=o.warehouse,
                        store=_SignInRequiredStore(o.store, refusal, on_refuse),  # type: ignore[arg-type]
                        audit=o.audit, policy=o.policy, ai_gate=o.ai_gate, plan_gate=o.plan_gate, tools=o.tools,
                        agents=o.agents, day=o.day, today=o.today, new_conversation=o.new_conversation)


def ask_as(orchestrator: Orchestrator, intent: str, identity: str | None, org: str | None = None) -> AskResult:
    """``intent`` asked by ``identity`` (from sign-in or the trusted local mode), or read-only when None."""
    if identity:
        return orchestrator.ask(intent, org=org, requested_by=identity)
    return read_only(orchestrator).ask(intent, org=org, requested_by=ANONYMOUS)


def answer_chunks(text: str) -> Iterator[str]:
    """The answer in word-sized pieces, line breaks kept, for a streaming display.

    The orchestrator answers whole (the pipeline validates the complete draft before anything is
    shown), so these chunks only pace the display; they do not pretend to be model tokens."""
    for n, line in enumerate(text.splitlines()):
        if n:
            yield "\n"
        words = line.split(" ")
        for i, word in enumerate(words):
            yield word if i == len(words) - 1 else word + " "


def suggested_prompts(insight_intents: Iterable[str], limit: int = 6) -> list[str]:
    """The day's suggested intents (ranked, distinct) then the fixed read-only prompts, at most ``limit``."""
    seen: dict[str, None] = {}
    for intent in (*insight_intents, *STARTER_PROMPTS):
        text = " ".join(str(intent).split())
        if text and text.casefold() not in {s.casefold() for s in seen}:
            seen[text] = None
    return list(seen)[:limit]


def model_status(env: Mapping[str, str] | None = None) -> str:
    """Which proposer answers first: "<provider>: <model>", or the offline router; never a key or URL."""
    from qlrf.ai.clients.settings import settings_from_env

    try:
        settings = settings_from_env(env)
    except ValueError as exc:  # a misconfigured model: the orchestrator falls back to the router too
        return f"offline router (model settings invalid: {str(exc).splitlines()[0]})"
    if not settings.enabled:
        return "offline router (no model configured)"
    name = f"{settings.deployment} (deployment)" if settings.deployment else settings.model
    return f"{settings.provider}: {name}, offline router as fallback"


__all__ = ["ANONYMOUS", "SIGN_IN_REQUIRED", "STARTER_PROMPTS", "answer_chunks", "ask_as", "model_status", "read_only",
           "suggested_prompts"]
