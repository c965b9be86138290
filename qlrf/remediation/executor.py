"""Execute a patch plan wave by wave: the Rego gate decides every wave, a health gate follows it,
a failing health gate rolls back and stops the plan, and every step lands in the audit log.

    result = execute_plan(plan, driver=AwsDriver(...), gate=Gate.embedded(), audit=AuditLog(),
                          approval={"plan_hash": plan.content_hash, "approver": "alice"},
                          requested_by="sensor:drift_breach", fleet_size=1200)

For each wave, in order:

1. the gate input (action ``execute_wave``, the wave index, ``canary``, ``targets`` =
   ``plan.wave_targets(i)``, ``drift_delta`` = 100 x targets / fleet_size clamped to [0, 100],
   whether the plan's maintenance window is open at ``now`` (true when the plan has none), the
   approval; built by qlrf.remediation.gate.request.gate_request, as the planner's previews are) is
   decided by the gate and audited (``policy_decision``, with input and decision);
2. not allowed: the plan stops as ``blocked`` with the reasons; nothing of that wave changed
   (earlier waves stay as they are: a ``canary_only`` environment runs its canary, then blocks
   until a human approves the plan hash);
3. allowed: ``driver.prepare(plan)`` once (before the first change), audit ``wave_start``,
   ``driver.run_wave(plan, i)`` (the driver replaces instances in chunks of
   ``spec.max_unavailable``), then ``driver.health(plan, i)`` polled until healthy or the plan's
   ``health_gate.timeout_seconds``, then (the soak) polled on for ``health_gate.soak_seconds``,
   every look still healthy: a canary that dies a second after launch fails its wave
   -> audit ``health_gate`` and ``wave_end``;
4. unhealthy (or the wave raised): the gate decides the ``rollback`` action (audited), then
   ``driver.rollback(plan, waves_done)`` restores the previous launch-template version / image /
   template / VM; audit ``rollback``; the plan stops as ``rolled_back`` (``failed`` when the gate
   denies the rollback or the rollback itself fails).

``execution_end`` is audited whatever happens. Nothing here imports Dagster or a cloud SDK: the
driver carries the platform.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from qlrf.remediation.gate.request import gate_request
from qlrf.remediation.gate.request import window_open as gate_window_open
from qlrf.remediation.plans import PatchPlan

if TYPE_CHECKING:
    from qlrf.remediation.canary.analyst import Analyst

POLICY_ACTOR = "policy:gate"  # who decides policy_decision records (as qlrf.remediation.approvals records them)
State = Literal["succeeded", "failed", "rolled_back", "blocked", "paused"]  # paused: stopped after `stop_after`
WaveState = Literal["blocked", "healthy", "unhealthy", "error"]


@dataclass(frozen=True)
class HealthReport:
    """One look at the machines a plan changed so far (waves 0..i)."""

    healthy: bool
    total: int
    healthy_count: int
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Driver(Protocol):
    """A platform's execution of a plan. One driver object executes one plan (it keeps state:
    the versions it created, the instances it replaced) between prepare and rollback."""

    def prepare(self, plan: PatchPlan) -> dict[str, Any] | None:
        """Read the current state and create what the waves need (a launch-template version, an
        instance template...), changing no running machine."""

    def run_wave(self, plan: PatchPlan, index: int) -> dict[str, Any]:
        """Change the machines of wave ``index`` (at most ``spec.max_unavailable`` at a time)."""

    def health(self, plan: PatchPlan, index: int) -> HealthReport:
        """The health gate over everything changed in waves 0..index (one look, no waiting)."""

    def rollback(self, plan: PatchPlan, waves_done: list[int]) -> dict[str, Any]:
        """Restore the previous image / version for the machines those waves changed."""


class AuditSink(Protocol):
    def append(self, kind: str, actor: str, subject: str, data: dict) -> Any: ...


class GateLike(Protocol):
    def decide(self, request: Any) -> Any: ...


@dataclass
class WaveResult:
    index: int
    name: str
    canary: bool
    targets: int
    drift_delta: float
    state: WaveState
    decision: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    health: HealthReport | None = None
    seconds: float = 0.0
    error: str | None = None


@dataclass
class ExecutionResult:
    state: State
    waves: list[WaveResult]
    reason: str
    plan_id: str = ""
    plan_hash: str = ""
    rollback: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def waves_done(self) -> list[int]:
        return [w.index for w in self.waves if w.state != "blocked"]

    def summary(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "plan_id": self.plan_id,
            "plan_hash": self.plan_hash,
            "seconds": round(self.seconds, 3),
            "waves": [
                {
                    "index": w.index,
                    "name": w.name,
                    "state": w.state,
                    "targets": w.targets,
                    "healthy": None if w.health is None else f"{w.health.healthy_count}/{w.health.total}",
                    **({"canary_analysis": w.details["canary_analysis"]["verdict"]}
                       if "canary_analysis" in w.details else {}),
                    "seconds": round(w.seconds, 3),
                }
                for w in self.waves
            ],
        }


def _error_text(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:500]}" if text else type(exc).__name__


def _decision_reason(decision: Any) -> str:
    if decision.reasons:
        return "denied: " + "; ".join(decision.reasons)
    if decision.requires_approval:
        why = "; ".join(decision.approval_reasons) or "the gate requires an approval"
        return f"pending approval of {decision.input.get('plan_hash')}: {why}"
    return "denied by the gate"


def execute_plan(
    plan: PatchPlan,
    *,
    driver: Driver,
    gate: GateLike,
    audit: AuditSink,
    approval: dict | None = None,
    requested_by: str,
    fleet_size: int,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] = print,
    poll_interval: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    subject: str | None = None,
    first_wave: int = 0,
    stop_after: int | None = None,
    analyst: Analyst | None = None,
) -> ExecutionResult:
    """Run ``plan`` through ``driver`` under ``gate``; see the module docstring.

    ``fleet_size``: the environment's VM count (the drift-delta denominator). ``now``: when the
    maintenance window is checked (default: the current UTC time). ``sleep``/``clock``: injected
    for tests (the health gate's deadline is measured on ``clock``). ``poll_interval``: seconds
    between health looks. ``subject``: what the audit records are about (the approval task id,
    ``task-...``, when there is one; default ``plan:<plan id>``).

    canary_only (issue 12 item 5): ``stop_after=0`` runs the canary wave alone and ends ``paused``
    once it is healthy (the later waves wait for the approval of the plan hash); ``first_wave=1``
    then runs the later waves of a plan whose canary passed in that earlier run (told to the gate as
    ``canary_passed``; a rollback covers the canary's wave too, as far as the driver can restore it).

    ``analyst`` (issue 12 item 1, qlrf.remediation.canary.analyst): after a healthy wave, judges the
    changed machines against the baseline; audited as ``canary_analysis`` and kept in the wave's
    details; ``fail`` rolls back, ``inconclusive`` ends the plan ``paused`` for a human.
    """
    if fleet_size < 1:
        raise ValueError(f"fleet_size must be >= 1 (the environment's VM count), got {fleet_size}")
    started = clock()
    meta, spec = plan.metadata, plan.spec
    plan_hash = plan.compute_hash()
    subject = subject or f"plan:{meta.id}"
    window_open = gate_window_open(plan, now or datetime.now(UTC))
    results: list[WaveResult] = []
    waves_done: list[int] = []

    def record(kind: str, data: dict[str, Any], actor: str | None = None) -> None:
        audit.append(kind, actor or requested_by, subject, {"plan_id": meta.id, "plan_hash": plan_hash, **data})

    def finish(state: State, reason: str, rollback: dict[str, Any] | None = None) -> ExecutionResult:
        result = ExecutionResult(state, results, reason, meta.id, plan_hash, rollback, clock() - started)
        record("execution_end", result.summary())
        log(f"plan {meta.id}: {state}: {reason}")
        return result

    if plan.content_hash is not None and plan.content_hash != plan_hash:
        return finish("blocked", "the plan's content_hash does not match its content (edited after sealing?)")
    if spec.terraform is not None:  # issue 12 item 4: Terraform owns these resources; a driver call would fight it
        return finish("blocked", "Terraform-managed (spec.terraform): changed through the Terraform code only "
                                 "(`qlrf plan terraform`), never through the cloud API")

    canary_ok = {"passed": first_wave > 0}  # a canary passed in an earlier run, or (below) in this one

    def request_for(action: str, index: int, targets: int | None = None, reason: str | None = None) -> dict[str, Any]:
        return gate_request(plan, action=action, wave=index, requested_by=requested_by, fleet_size=fleet_size,
                            window_is_open=window_open, approval=approval, targets=targets, reason=reason,
                            canary_passed=canary_ok["passed"])

    def roll_back(index: int, why: str) -> ExecutionResult:
        done = sorted(set(waves_done))
        targets = max(1, sum(plan.wave_targets(j) for j in done))
        request = request_for("rollback", index, targets, why)
        decision = gate.decide(request)
        record("policy_decision", _decision_record(index, "rollback", decision), actor=POLICY_ACTOR)
        if not decision.allow:
            reason = f"{why}; rollback not allowed ({_decision_reason(decision)})"
            record("rollback", {"performed": False, "waves": done, "why": why, "reason": reason})
            return finish("failed", reason)
        log(f"plan {meta.id}: rolling back waves {done}: {why}")
        t0 = clock()
        try:
            details = driver.rollback(plan, done) or {}
        except Exception as exc:  # noqa: BLE001 - a failed rollback is reported, never hidden
            reason = f"{why}; rollback failed: {_error_text(exc)}"
            record("rollback", {"performed": False, "waves": done, "why": why, "error": _error_text(exc)})
            return finish("failed", reason)
        record("rollback", {"performed": True, "waves": done, "why": why, "seconds": round(clock() - t0, 3), "details": details})
        return finish("rolled_back", f"{why}; rolled back waves {done}", details)

    prepared = False
    waves_done.extend(range(first_wave))  # earlier runs changed these: a rollback restores them too
    for index, wave in enumerate(spec.waves):
        if index < first_wave:
            continue
        if stop_after is not None and index > stop_after:
            return finish("paused", f"waves 0..{stop_after} healthy; wave {index} ({wave.name}) waits for the approval "
                                    f"of {plan_hash}")
        targets = plan.wave_targets(index)
        request = request_for("execute_wave", index)
        drift_delta = request["drift_delta"]
        decision = gate.decide(request)
        record("policy_decision", _decision_record(index, "execute_wave", decision), actor=POLICY_ACTOR)
        result = WaveResult(index, wave.name, wave.canary, targets, drift_delta, "blocked", decision.as_dict())
        results.append(result)
        if not decision.allow:
            reason = f"wave {index} ({wave.name}) {_decision_reason(decision)}"
            return finish("blocked", reason)

        t0 = clock()
        if not prepared:
            try:
                prep = driver.prepare(plan) or {}
            except Exception as exc:  # noqa: BLE001
                result.state, result.error = "error", _error_text(exc)
                return finish("failed", f"preparing the plan failed: {_error_text(exc)}")
            prepared = True
            result.details["prepare"] = prep
        record("wave_start", {"wave": index, "name": wave.name, "canary": wave.canary, "targets": targets,
                              "drift_delta": drift_delta, "max_unavailable": spec.max_unavailable})
        log(f"plan {meta.id}: wave {index} ({wave.name}) starts: {targets} target(s)")
        waves_done.append(index)  # before run_wave: a half-done wave is rolled back too
        try:
            result.details.update(driver.run_wave(plan, index) or {})
        except Exception as exc:  # noqa: BLE001
            result.state, result.error, result.seconds = "error", _error_text(exc), clock() - t0
            record("wave_end", {"wave": index, "state": "error", "error": result.error})
            return roll_back(index, f"wave {index} ({wave.name}) failed: {result.error}")

        report, polls, waited = _await_health(driver, plan, index, spec.health_gate.timeout_seconds,
                                              poll_interval, sleep, clock, soak=spec.health_gate.soak_seconds)
        result.health = report
        result.state = "healthy" if report.healthy else "unhealthy"
        result.seconds = clock() - t0
        record("health_gate", {"wave": index, "healthy": report.healthy, "total": report.total,
                               "healthy_count": report.healthy_count, "polls": polls,
                               "waited_seconds": round(waited, 3),
                               "timeout_seconds": spec.health_gate.timeout_seconds,
                               "soak_seconds": spec.health_gate.soak_seconds,
                               "min_healthy_percent": spec.health_gate.min_healthy_percent,
                               "details": report.details}, actor="health_gate")
        record("wave_end", {"wave": index, "state": result.state, "seconds": round(result.seconds, 3),
                            "details": result.details})
        log(f"plan {meta.id}: wave {index} {result.state} ({report.healthy_count}/{report.total} healthy)")
        if not report.healthy:
            why = (f"health gate failed after wave {index} ({wave.name}): {report.healthy_count}/{report.total} "
                   f"healthy within {spec.health_gate.timeout_seconds}s")
            if report.details.get("soak"):
                why += f" ({report.details['soak']})"
            problems = report.details.get("unhealthy")
            if problems:
                why += f" (unhealthy: {_short(problems)})"
            return roll_back(index, why)
        if analyst is not None:
            stop = _analyse(analyst, plan, index, wave.name, driver, result, record)
            if stop is not None:
                return roll_back(index, stop[1]) if stop[0] == "fail" else finish("paused", stop[1])
        if wave.canary:
            canary_ok["passed"] = True
    return finish("succeeded", f"all {len(spec.waves)} waves healthy")


def _analyse(analyst: Analyst, plan: PatchPlan, index: int, name: str, driver: Driver, result: WaveResult,
             record: Callable[..., None]) -> tuple[str, str] | None:
    """Run the canary analysis of wave ``index``; (verdict, reason) when the plan must stop."""
    try:
        analysis = analyst(plan, index, driver)
    except Exception as exc:  # noqa: BLE001 - an analysis that cannot run is never a pass
        from qlrf.remediation.canary.analyst import CanaryAnalysis

        analysis = CanaryAnalysis("inconclusive", f"the analysis failed: {_error_text(exc)}")
    if analysis is None:
        return None
    body = analysis.as_dict()
    result.details["canary_analysis"] = body
    record("canary_analysis", {"wave": index, **body}, actor="canary_analysis")
    if analysis.verdict == "fail":
        return "fail", f"canary analysis failed after wave {index} ({name}): {analysis.reason}"
    if analysis.verdict == "inconclusive":
        return "inconclusive", (f"canary analysis inconclusive after wave {index} ({name}): {analysis.reason}; "
                                "nothing further changed: a human decides (approve the later waves or roll back)")
    return None


def _decision_record(index: int, action: str, decision: Any) -> dict[str, Any]:
    """policy_decision data as the audit log wants it: the gate ``input`` and the ``decision``."""
    body = decision.as_dict()
    return {"wave": index, "action": action, "input": body.pop("input"), "decision": body}


def _short(value: Any, limit: int = 300) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _await_health(
    driver: Driver,
    plan: PatchPlan,
    index: int,
    timeout: float,
    interval: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    soak: float = 0.0,
) -> tuple[HealthReport, int, float]:
    """Poll driver.health until healthy or the deadline, then through the soak; a look that raises
    counts as unhealthy, and so does any look during the soak."""
    t0 = clock()
    deadline = t0 + timeout
    polls = 0

    def look() -> HealthReport:
        try:
            return driver.health(plan, index)
        except Exception as exc:  # noqa: BLE001 - an API hiccup is one failed look, not the verdict
            return HealthReport(False, 0, 0, {"error": _error_text(exc)})

    while True:
        polls += 1
        report = look()
        if report.healthy:
            break
        remaining = deadline - clock()
        if remaining <= 0:
            return report, polls, clock() - t0
        sleep(max(0.0, min(interval, remaining)))
    healthy_at = clock()
    while (remaining := healthy_at + soak - clock()) > 0:
        sleep(max(0.0, min(interval, remaining)))
        polls += 1
        again = look()
        if not again.healthy:
            into = clock() - healthy_at
            details = {**again.details, "soak": f"unhealthy {into:.1f}s into the {soak:g}s soak"}
            return HealthReport(False, again.total, again.healthy_count, details), polls, clock() - t0
        report = again
    return report, polls, clock() - t0


def chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    """``items`` in consecutive chunks of at most ``size`` (max_unavailable)."""
    size = max(1, int(size))
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


__all__ = [
    "AuditSink",
    "Driver",
    "ExecutionResult",
    "HealthReport",
    "WaveResult",
    "chunks",
    "execute_plan",
]
