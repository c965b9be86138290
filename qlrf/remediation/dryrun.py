"""Dry run: walk a plan's waves, ask the gate about each, and list every cloud call the driver
would make, without making one.

    result = dry_run_plan(plan, driver=driver_for("aws", recorder=CallRecorder(dry_run=True)), gate=gate,
                          audit=audit, requested_by="cli:alice", fleet_size=1200, now=now)

The driver runs ``prepare`` and ``run_wave`` as in a real execution, but its recorder is in dry-run
mode: read-only calls resolve the real targets, every mutating call is recorded as a
:class:`~qlrf.remediation.calls.CloudCall` and not sent, and nothing is waited for. There is no
health gate (nothing changed) and no rollback. Every wave is walked even when the gate would stop
a real run there (``allowed`` says which waves would run), so a plan can be reviewed whole before
anyone approves it. One ``dry_run`` audit record holds the waves, decisions and calls: a dry run is
never audited as an execution, and it never moves a task's state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from qlrf.remediation.calls import CallRecorder, CloudCall
from qlrf.remediation.executor import AuditSink, Driver, GateLike
from qlrf.remediation.gate.request import gate_request
from qlrf.remediation.gate.request import window_open as gate_window_open
from qlrf.remediation.plans import PatchPlan

DRY_RUN_KIND = "dry_run"


class RecordingDriver(Driver, Protocol):
    recorder: CallRecorder


@dataclass
class DryRunWave:
    index: int
    name: str
    targets: int
    allowed: bool
    decision: dict[str, Any]
    calls: list[CloudCall] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"wave": self.index, "name": self.name, "targets": self.targets, "allowed": self.allowed,
                "decision": self.decision, "calls": [c.as_dict() for c in self.calls]}


@dataclass
class DryRunResult:
    plan_id: str
    plan_hash: str
    prepare: list[CloudCall] = field(default_factory=list)
    waves: list[DryRunWave] = field(default_factory=list)
    error: str | None = None

    @property
    def calls(self) -> list[CloudCall]:
        """Every mutating call, in the order a real run would make them."""
        return [*self.prepare, *(c for w in self.waves for c in w.calls)]

    @property
    def would_run(self) -> bool:
        """True when the gate allows every wave now and the driver resolved every target."""
        return self.error is None and bool(self.waves) and all(w.allowed for w in self.waves)

    def summary(self) -> dict[str, Any]:
        return {"plan_id": self.plan_id, "plan_hash": self.plan_hash, "would_run": self.would_run, "error": self.error,
                "prepare": [c.as_dict() for c in self.prepare], "waves": [w.as_dict() for w in self.waves],
                "calls": len(self.calls)}

    def lines(self) -> list[str]:
        """A human listing: the calls per step, and what the gate said about each wave."""
        out = [f"dry run of {self.plan_id} ({self.plan_hash}): nothing was changed"]
        out += [f"  prepare: {c.describe()}" for c in self.prepare]
        for w in self.waves:
            verdict = "allowed" if w.allowed else "blocked: " + _why(w.decision)
            out.append(f"  wave {w.index} ({w.name}, {w.targets} target(s)): gate {verdict}")
            out += [f"    {c.describe()}" for c in w.calls]
        if self.error:
            out.append(f"  stopped: {self.error}")
        out.append(f"{len(self.calls)} call(s); a real run {'would run every wave' if self.would_run else 'would stop'}")
        return out


def _why(decision: dict[str, Any]) -> str:
    if decision.get("deny"):
        return "; ".join(decision["deny"])
    if decision.get("requires_approval"):
        return "needs approval: " + ("; ".join(decision.get("approval_reasons") or []) or "the gate requires an approval")
    return "denied by the gate"


def dry_run_plan(
    plan: PatchPlan,
    *,
    driver: RecordingDriver,
    gate: GateLike,
    audit: AuditSink,
    requested_by: str,
    fleet_size: int,
    now: datetime | None = None,
    approval: dict | None = None,
    subject: str | None = None,
    actor: str | None = None,
    log: Callable[[str], None] = print,
) -> DryRunResult:
    """Walk `plan` through `driver` in dry-run mode under `gate`; see the module docstring.

    ``requested_by`` is who the gate hears asking (as in the real run: the task's requester);
    ``actor`` who ran the dry run, for the audit record (default: ``requested_by``).
    """
    recorder = getattr(driver, "recorder", None)
    if not isinstance(recorder, CallRecorder) or not recorder.dry_run:
        raise ValueError("dry_run_plan needs a driver whose recorder is in dry-run mode (CallRecorder(dry_run=True))")
    if fleet_size < 1:
        raise ValueError(f"fleet_size must be >= 1 (the environment's VM count), got {fleet_size}")
    plan_hash = plan.compute_hash()
    result = DryRunResult(plan.metadata.id, plan_hash)
    if plan.content_hash is not None and plan.content_hash != plan_hash:
        result.error = "the plan's content_hash does not match its content (edited after sealing?)"
    else:
        _walk(plan, result, driver, recorder, gate, requested_by, fleet_size,
              gate_window_open(plan, now or datetime.now(UTC)), approval)
    audit.append(DRY_RUN_KIND, actor or requested_by, subject or f"plan:{plan.metadata.id}", result.summary())
    for line in result.lines():
        log(line)
    return result


def _walk(plan: PatchPlan, result: DryRunResult, driver: Driver, recorder: CallRecorder, gate: GateLike,
          requested_by: str, fleet_size: int, window_is_open: bool, approval: dict | None) -> None:
    prepared = False
    for index, wave in enumerate(plan.spec.waves):
        request = gate_request(plan, wave=index, requested_by=requested_by, fleet_size=fleet_size,
                               window_is_open=window_is_open, approval=approval)
        decision = gate.decide(request).as_dict()
        step = DryRunWave(index, wave.name, request["targets"], bool(decision["allow"]), decision)
        result.waves.append(step)
        try:
            if not prepared:
                mark = recorder.mark()
                driver.prepare(plan)
                result.prepare = recorder.since(mark)
                prepared = True
            mark = recorder.mark()
            driver.run_wave(plan, index)
            step.calls = recorder.since(mark)
        except Exception as exc:  # noqa: BLE001 - a target the driver cannot resolve ends the dry run, reported
            result.error = f"wave {index} ({wave.name}): {type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
            return


__all__ = ["DRY_RUN_KIND", "DryRunResult", "DryRunWave", "dry_run_plan"]
