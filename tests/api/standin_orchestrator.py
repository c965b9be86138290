"""A module shaped like ``qlrf.ai.orchestrator`` (``Orchestrator.from_env(settings, today=)`` and
``.ask(intent, *, org, requested_by)``), so the production factory's import, per-day rebuild and
configuration refusal are tested through the real code path without the real orchestrator."""

from __future__ import annotations

from datetime import date

from qlrf.ai.answers import AskResult

BUILT: list[tuple[object, date]] = []
REFUSE: str | None = None  # set by a test: from_env raises ValueError with this message


class Orchestrator:
    def __init__(self, today: date):
        self.today = today

    @classmethod
    def from_env(cls, settings=None, *, today=None) -> Orchestrator:
        if REFUSE:
            raise ValueError(REFUSE)
        BUILT.append((settings, today))
        return cls(today)

    def ask(self, intent: str, *, org: str | None = None, requested_by: str) -> AskResult:
        return AskResult(intent=intent, agent="drift", task_type="answer", source="offline",
                         answer=f"{self.today} {requested_by} {org} {intent}")
