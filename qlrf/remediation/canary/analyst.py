"""The executor's hook: after a wave passed its health gate, judge the canary.

    analyst = CanaryAnalyst({"cloudwatch": CloudWatchSource.for_region("eu-west-1")}, policy=policy, now=clock)
    execute_plan(plan, ..., analyst=analyst)

For wave ``i`` the analyst resolves the plan's canary config (the plan's ``spec.canary``, else
its environment's in the remediation policy; none -> no analysis, the executor goes on as
before), asks the driver which machines are canary and which baseline
(``driver.members(plan, i) -> (changed ids, baseline ids)``: everything the plan changed in waves
0..i, all on the golden image, against the members still on the old one), collects every metric
for ``[now - lookback_seconds, now)`` and judges. What the executor does with the answer:
``pass`` -> the next wave; ``fail`` -> rollback (the reason names the failed metrics);
``inconclusive`` -> the plan stops ``paused`` for a human, nothing further changed; ``skipped``
(no baseline left after the last wave, or nothing changed) -> the next wave.

A driver without ``members`` or a source that fails makes the analysis inconclusive, never a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from qlrf.remediation.canary.config import resolve_config
from qlrf.remediation.canary.judge import judge
from qlrf.remediation.canary.metrics import MetricSource, Window, collect

AnalysisVerdict = Literal["pass", "fail", "inconclusive", "skipped"]


@dataclass
class CanaryAnalysis:
    verdict: AnalysisVerdict
    reason: str
    canary: list[str] = field(default_factory=list)
    baseline: list[str] = field(default_factory=list)
    window: dict[str, Any] = field(default_factory=dict)
    judgement: dict[str, Any] | None = None  # score, thresholds and per-metric statistics

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "canary": self.canary, "baseline": self.baseline,
                "window": self.window, **(self.judgement or {"metrics": [], "thresholds": {}, "score": None})}


class Analyst(Protocol):
    """What execute_plan calls after a healthy wave; None: no analysis configured."""

    def __call__(self, plan: Any, index: int, driver: Any) -> CanaryAnalysis | None: ...


class CanaryAnalyst:
    """``sources``: by source name (``cloudwatch``, ``azure_monitor``, ``cloud_monitoring``,
    ``vsphere``, ``http_probe``); ``policy``: the RemediationPolicy whose environments may carry a
    ``canary`` section; ``now``: the analysis time (the window ends there)."""

    def __init__(self, sources: Mapping[str, MetricSource], *, policy: Any = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.sources, self.policy, self.now = dict(sources), policy, now

    def __call__(self, plan: Any, index: int, driver: Any) -> CanaryAnalysis | None:
        config = resolve_config(plan, self.policy)
        if config is None:
            return None
        members = getattr(driver, "members", None)
        if members is None:
            return CanaryAnalysis("inconclusive", f"the {type(driver).__name__} cannot tell canary from baseline "
                                                  "(no members()): a human must judge the canary")
        try:
            changed, baseline = members(plan, index)
        except Exception as exc:  # noqa: BLE001 - cannot analyse is never a pass
            return CanaryAnalysis("inconclusive", f"listing canary and baseline failed: {type(exc).__name__}: {exc}")
        changed, baseline = list(changed), list(baseline)
        if not changed:
            return CanaryAnalysis("skipped", "no machine changed so far: nothing to judge", changed, baseline)
        if not baseline:
            return CanaryAnalysis("skipped", "no baseline left: every member runs the golden image", changed, baseline)
        end = self.now()
        window = Window(end - timedelta(seconds=config.lookback_seconds), end, config.step_seconds)
        data = collect(config, self.sources, changed, baseline, window)
        judgement = judge(config, data)
        return CanaryAnalysis(judgement.verdict, judgement.reason, changed, baseline,
                              {"start": window.start.isoformat(), "end": window.end.isoformat(),
                               "step_seconds": window.step_seconds}, judgement.as_dict())


__all__ = ["Analyst", "CanaryAnalysis", "CanaryAnalyst"]
