"""The production `ask`: the AI orchestrator, imported when first asked, rebuilt when the day changes.

Why lazily: the API must start (and answer tasks, health and readiness) in a build without the
orchestrator or with a model misconfigured; only ``/api/v1/ai/execute`` then answers 503, saying why.

Why per day: ``Orchestrator.from_env(settings, today=...)`` takes the day as an input (time is
never read inside), and a server runs across midnight; the clock is the server's, injected.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from qlrf.envparse import redact_credentials
from qlrf.settings import Settings

if TYPE_CHECKING:  # the AI package costs seconds to import; the API needs it only once someone asks
    from qlrf.ai.answers import AskResult

ORCHESTRATOR_MODULE = "qlrf.ai.orchestrator"


class Ask(Protocol):
    """`refuse_proposals`: (why, record) when the asker may read but not propose (issue 14): the question
    is answered, a proposal refused at the task step with `why`, and `record()` writes the refusal."""

    def __call__(self, intent: str, *, org: str | None, requested_by: str,
                 refuse_proposals: tuple[str, Callable[[], None]] | None = None) -> AskResult: ...


AskFactory = Callable[[], Ask]


class AskUnavailable(RuntimeError):
    """The orchestrator cannot answer at all (not installed, or its configuration is refused)."""


class OrchestratorAsk:
    """An :data:`AskFactory` over ``<module>.Orchestrator``; one ask at a time.

    Asks are serialised: the orchestrator's thread safety is not promised, and on two cores
    parallel DuckDB-backed asks gain nothing.
    """

    def __init__(self, settings: Settings | None, clock: Callable[[], datetime], module: str = ORCHESTRATOR_MODULE):
        self.settings = settings
        self.clock = clock
        self.module = module
        self._lock = threading.Lock()
        self._day: date | None = None
        self._orchestrator: Any = None

    def __call__(self) -> Ask:
        today = self.clock().date()
        with self._lock:
            if self._orchestrator is None or self._day != today:
                self._orchestrator = self._build(today)
                self._day = today
        return self._ask

    def _build(self, today: date) -> Any:
        try:
            module = importlib.import_module(self.module)
        except ModuleNotFoundError as exc:
            if exc.name is not None and self.module.startswith(exc.name):
                raise AskUnavailable(f"the AI orchestrator ({self.module}) is not part of this build") from None
            raise
        try:
            return module.Orchestrator.from_env(self.settings, today=today)
        except (ValueError, OSError) as exc:  # configuration refused (names the variable) or files missing
            raise AskUnavailable(redact_credentials(f"the AI orchestrator cannot start: {exc}")) from None

    def _ask(self, intent: str, *, org: str | None, requested_by: str,
             refuse_proposals: tuple[str, Callable[[], None]] | None = None) -> AskResult:
        with self._lock:
            orchestrator = self._orchestrator
            if refuse_proposals is not None:
                from qlrf.ai.copilot import read_only

                orchestrator = read_only(orchestrator, *refuse_proposals)
            return orchestrator.ask(intent, org=org, requested_by=requested_by)


__all__ = ["ORCHESTRATOR_MODULE", "Ask", "AskFactory", "AskUnavailable", "OrchestratorAsk"]
