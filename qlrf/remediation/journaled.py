"""A driver whose every step is journalled: the intent committed before, the result after.

:class:`JournaledDriver` wraps any platform driver (qlrf.remediation.executor.Driver) for one
:class:`~qlrf.remediation.journal.Attempt`, so ``execute_plan`` needs no change to become crash-safe:

* ``prepare``, ``run_wave`` (step ``wave N run``) and ``rollback`` each write an intent row with the
  driver's checkpoint before they start and complete it (done | failed | interrupted) with the
  result and a fresh checkpoint after;
* every mutating cloud call the driver sends through its ``recorder`` (step ``chunk``) is an intent
  row (the call, the wave, the checkpoint as it stands before the call: the rollback data) committed
  before the call and completed with the response's identifiers after it;
* ``health`` looks are journalled when a wave's verdict changes (not every poll).

A driver restored from a checkpoint (``restored=True``) has nothing to prepare: ``prepare`` is not
called again, so a resumed run reuses the launch-template version / instance template it made.

Driver state protocol (every driver implements it; new target kinds must too)::

    def checkpoint(self) -> dict[str, Any]:          # JSON-serialisable: everything rollback()/resume need
    def restore(self, state: dict[str, Any]) -> None: # load into a fresh driver before rollback or resume
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from qlrf.remediation.calls import CallRecorder, CloudCall
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.journal import DONE, FAILED, INTERRUPTED, Attempt
from qlrf.remediation.plans import PatchPlan

T = TypeVar("T")
_RESULT_CHARS = 2000


@runtime_checkable
class Checkpointing(Protocol):
    """What a driver needs for crash-safe execution (see the module docstring)."""

    def checkpoint(self) -> dict[str, Any]: ...

    def restore(self, state: dict[str, Any]) -> None: ...


def summary(value: Any) -> Any:
    """A call's result as journal JSON: managed objects by id, SDK models as dicts, long text cut."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "_moId"):
        return {"moid": value._moId}
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, dict):
        value = {k: v for k, v in value.items() if k != "ResponseMetadata"}
    text = json.dumps(value, default=str, sort_keys=True)
    return json.loads(text) if len(text) <= _RESULT_CHARS else {"truncated": text[:_RESULT_CHARS]}


def _error(exc: BaseException) -> dict[str, str]:
    return {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"}


def _outcome(exc: BaseException) -> str:
    return FAILED if isinstance(exc, Exception) else INTERRUPTED


class JournalingRecorder(CallRecorder):
    """The driver's recorder, journalling each mutating call around the call itself."""

    def __init__(self, inner: CallRecorder, owner: JournaledDriver):
        super().__init__(dry_run=inner.dry_run)
        self.calls = inner.calls  # one list: what the driver's callers read still fills
        self.owner = owner

    def send(self, call: CloudCall, perform: Callable[[], T], dry_result: T | None = None) -> T | None:
        if self.dry_run:
            return super().send(call, perform, dry_result)
        attempt, wave = self.owner.attempt, self.owner.wave
        row = attempt.write("chunk", {"call": call.as_dict()}, wave=wave, checkpoint=self.owner.state())
        try:
            result = super().send(call, perform, dry_result)
        except BaseException as exc:
            attempt.complete(row, _outcome(exc), _error(exc))
            raise
        attempt.complete(row, DONE, summary(result))
        return result


class JournaledDriver:
    """``driver`` with every step journalled in ``attempt`` (see the module docstring)."""

    def __init__(self, driver: Any, attempt: Attempt, *, restored: bool = False):
        self.inner, self.attempt, self.restored = driver, attempt, restored
        self.wave: int | None = None
        self._verdicts: dict[int, bool] = {}
        recorder = getattr(driver, "recorder", None)
        if isinstance(recorder, CallRecorder) and not isinstance(recorder, JournalingRecorder):
            driver.recorder = JournalingRecorder(recorder, self)

    def __getattr__(self, name: str) -> Any:  # close(), recorder, ...: the driver's own
        return getattr(self.inner, name)

    def state(self) -> dict[str, Any] | None:
        """The driver's checkpoint, or None for a driver without the state protocol."""
        return self.inner.checkpoint() if isinstance(self.inner, Checkpointing) else None

    def _step(self, step: str, intent: dict[str, Any], wave: int | None, run: Callable[[], T]) -> T:
        row = self.attempt.write(step, intent, wave=wave, checkpoint=self.state())
        try:
            out = run()
        except BaseException as exc:
            self.attempt.complete(row, _outcome(exc), _error(exc), checkpoint=self.state())
            raise
        self.attempt.complete(row, DONE, summary(out), checkpoint=self.state())
        return out

    def prepare(self, plan: PatchPlan) -> dict[str, Any] | None:
        if self.restored:
            return {"restored_from_journal": True}
        return self._step("prepare", {"plan_id": plan.metadata.id, "plan_type": plan.spec.plan_type,
                                       "to_image": plan.spec.to_image.image_ref if plan.spec.to_image else None}, None,
                          lambda: self.inner.prepare(plan))

    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        self.wave = index
        wave = plan.spec.waves[index]
        intent = {"wave": index, "name": wave.name, "targets": plan.wave_targets(index),
                  "max_unavailable": plan.spec.max_unavailable}
        return self._step(f"wave {index} run", intent, index, lambda: self.inner.run_wave(plan, index))

    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        report = self.inner.health(plan, index)
        if self._verdicts.get(index) != report.healthy:
            self._verdicts[index] = report.healthy
            self.attempt.write("health", {"wave": index}, wave=index, status=DONE,
                               result={"healthy": report.healthy, "healthy_count": report.healthy_count,
                                       "total": report.total})
        return report

    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        self.wave = None
        return self._step("rollback", {"waves": list(waves_done)}, None, lambda: self.inner.rollback(plan, waves_done))


__all__ = ["Checkpointing", "JournaledDriver", "JournalingRecorder", "summary"]
