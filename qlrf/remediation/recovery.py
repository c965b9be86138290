"""Crash recovery: the next execution of a task whose last run was killed rolls it back or resumes it
from the execution journal, never from anyone's memory.

:func:`crashed_attempt` finds the task's unfinished attempt and says whether it is abandoned
(interrupted, its process gone, or silent for ``journal.stale_after_seconds``). :func:`recover`
then takes it over (one recoverer wins) and, as the policy's ``journal.on_crash`` says:

* ``rollback`` (default): a fresh driver is loaded with the newest checkpoint in the journal (the
  launch-template version the group ran, the scale-set model, the instance template, the original
  VM); the gate decides the ``rollback`` action (audited ``policy_decision``); the driver restores
  every wave any attempt began (and a canary run before the approval); audit ``rollback`` with
  ``from_journal``; the task ends ``rolled_back`` (``failed`` when the gate refuses or it fails).
* ``resume``: the driver is loaded the same way, audit ``execution_resumed``, and ``execute_plan``
  continues from the first wave without a healthy ``wave_end`` in the audit log, every wave decided
  by the gate again (a half-done wave finishes its remaining share; replaced instances are looked up
  before anything is launched again).

Both start with an ``execution_recovery`` audit record: the abandoned attempt, why it counts as
abandoned, the decision and why. A task with no checkpoint cannot be rolled back automatically: it
fails naming what the journal says was sent, for a person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from qlrf.remediation.approvals import Task, TaskStore
from qlrf.remediation.executor import AuditSink, ExecutionResult, GateLike, _decision_record, execute_plan
from qlrf.remediation.gate.request import gate_request
from qlrf.remediation.gate.request import window_open as gate_window_open
from qlrf.remediation.journal import DONE, FAILED, Entry, ExecutionJournal
from qlrf.remediation.journaled import Checkpointing, JournaledDriver
from qlrf.remediation.plans import PatchPlan
from qlrf.remediation.policy import JournalPolicy, RemediationPolicy

if TYPE_CHECKING:
    from qlrf.remediation.canary.analyst import Analyst

Log = Callable[[str], None]
POLICY_ACTOR = "policy:gate"


def journal_for(store: TaskStore) -> ExecutionJournal:
    """The journal in the task store's database (same engine, same test clock)."""
    return ExecutionJournal(engine=store.engine, clock=store.clock)


def crash_policy(policy: JournalPolicy | None) -> JournalPolicy:
    """The given policy, else the remediation policy file's ``journal`` section (read when needed)."""
    return policy if policy is not None else RemediationPolicy.load().journal


@dataclass(frozen=True)
class Crash:
    """An abandoned attempt of a task and why it counts as abandoned."""

    entry: Entry
    why: str


def crashed_attempt(journal: ExecutionJournal, task: Task, policy: JournalPolicy | None) -> Crash | None:
    """The task's unfinished attempt when it is abandoned; None when there is none or it may still run."""
    entry = journal.unfinished(task.id)
    if entry is None or entry.plan_hash != task.plan_hash:
        return None
    why = journal.abandoned(entry, crash_policy(policy).stale_after_seconds)
    return Crash(entry, why) if why else None


def healthy_waves(audit: Any, task: Task) -> list[int]:
    """Waves whose ``wave_end`` in the audit log says healthy (the executor's verdict, soak included)."""
    return sorted({r.data["wave"] for r in audit.records(subject=task.id, kind="wave_end")
                   if r.data.get("plan_hash") == task.plan_hash and r.data.get("state") == "healthy"})


def first_unfinished(healthy: list[int]) -> int:
    first = 0
    while first in healthy:
        first += 1
    return first


@dataclass
class Recovered:
    """What recovery did: the task's final state (None: it stays pending/running), the result."""

    state: str | None
    reason: str
    result: ExecutionResult


def recover(
    store: TaskStore,
    task: Task,
    crash: Crash,
    *,
    journal: ExecutionJournal,
    driver: Any,
    gate: GateLike,
    audit: AuditSink,
    actor: str,
    approval: dict | None,
    fleet_size: int,
    policy: JournalPolicy | None,
    canary_passed: bool,
    log: Log,
    now: datetime | None = None,
    mode: str | None = None,
    analyst: Analyst | None = None,
) -> Recovered | None:
    """Take the abandoned attempt over and roll back or resume (see the module docstring).

    ``mode``: force ``rollback`` (a killed canary-only run is always rolled back); default the
    policy's ``on_crash``. ``analyst``: the canary analysis a resumed run applies after each wave, as
    the original run would have (a resume must not skip the analysis). None when another recoverer
    took the attempt first.
    """
    plan = task.plan()
    if not journal.take_over(crash.entry, crash.why):
        return None
    mode = mode or crash_policy(policy).on_crash
    started = sorted(set(journal.waves_started(task.id)) | ({0} if canary_passed else set()))
    healthy = healthy_waves(store.audit if store.audit is not None else audit, task)
    saved = journal.latest_checkpoint(task.id)
    why = {"rollback": "journal.on_crash is rollback: back to the known-good state the journal recorded",
           "resume": "journal.on_crash is resume: continue from the first unfinished wave, the gate deciding each"}[mode]
    if saved is None or not isinstance(driver, Checkpointing):
        mode = "manual"
        why = ("nothing to restore: no cloud call was sent" if not journal.changed_anything(task.id) else
               "no driver checkpoint in the journal: a person must check what the journal shows was sent")
    first = first_unfinished(healthy)
    base = {"plan_id": plan.metadata.id, "plan_hash": task.plan_hash, "previous_attempt": crash.entry.attempt,
            "previous_owner": crash.entry.owner, "abandoned": crash.why, "decision": mode, "why": why,
            "waves_started": started, "waves_healthy": healthy}
    audit.append("execution_recovery", actor, task.id, {**base, "first_wave": first if mode == "resume" else None,
                                                        "checkpoint_seq": saved[1].seq if saved else None})
    log(f"{task.id}: its last run ({crash.entry.owner}) was abandoned ({crash.why}): {mode} - {why}")
    if mode == "manual":
        reason = f"last run abandoned ({crash.why}); {why}"
        return Recovered("failed", reason, ExecutionResult("failed", [], reason, plan.metadata.id, task.plan_hash))
    driver.restore(saved[0])
    attempt = journal.begin(task.id, plan.metadata.id, task.plan_hash, mode=f"recover:{mode}", actor=actor,
                            previous=crash.entry.attempt)
    wrapped = JournaledDriver(driver, attempt, restored=True)
    try:
        if mode == "resume":
            audit.append("execution_resumed", actor, task.id, {**base, "first_wave": first, "attempt": attempt.id})
            result = execute_plan(plan, driver=wrapped, gate=gate, audit=audit, approval=approval,
                                  requested_by=task.requested_by, fleet_size=fleet_size, log=log, now=now,
                                  subject=task.id, first_wave=first, analyst=analyst)
        else:
            result = rollback_from_journal(plan, wrapped, started, gate=gate, audit=audit, task=task, approval=approval,
                                           fleet_size=fleet_size, why=f"last run abandoned ({crash.why})",
                                           canary_passed=canary_passed, now=now)
    except BaseException as exc:
        attempt.finish(FAILED, {"error": f"{type(exc).__name__}: {exc}"[:500]})
        raise
    attempt.finish(DONE, result.summary())
    state = result.state if result.state not in ("blocked", "paused") else "failed"
    reason = result.reason if result.state != "blocked" else f"blocked by the gate: {result.reason}"
    return Recovered(state, f"recovered by {mode}: {reason}", result)


def rollback_from_journal(
    plan: PatchPlan,
    driver: JournaledDriver,
    waves: list[int],
    *,
    gate: GateLike,
    audit: AuditSink,
    task: Task,
    approval: dict | None,
    fleet_size: int,
    why: str,
    canary_passed: bool,
    now: datetime | None,
) -> ExecutionResult:
    """The executor's rollback, from a restored driver: gate, audit, restore every started wave."""
    record = {"plan_id": plan.metadata.id, "plan_hash": task.plan_hash}
    last = max(waves) if waves else 0
    targets = max(1, sum(plan.wave_targets(j) for j in waves))
    request = gate_request(plan, action="rollback", wave=last, requested_by=task.requested_by, fleet_size=fleet_size,
                           window_is_open=gate_window_open(plan, now or datetime.now(UTC)), approval=approval,
                           targets=targets, reason=why, canary_passed=canary_passed)
    decision = gate.decide(request)
    audit.append("policy_decision", POLICY_ACTOR, task.id, {**record, **_decision_record(last, "rollback", decision)})
    if not decision.allow:
        reason = f"{why}; rollback not allowed: {'; '.join(decision.reasons) or 'denied by the gate'}"
        audit.append("rollback", task.requested_by, task.id,
                     {**record, "performed": False, "waves": waves, "why": why, "reason": reason, "from_journal": True})
        return ExecutionResult("failed", [], reason, plan.metadata.id, task.plan_hash)
    try:
        details = driver.rollback(plan, waves) or {}
    except Exception as exc:  # noqa: BLE001 - a failed rollback is reported, never hidden
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
        audit.append("rollback", task.requested_by, task.id,
                     {**record, "performed": False, "waves": waves, "why": why, "error": error, "from_journal": True})
        return ExecutionResult("failed", [], f"{why}; rollback failed: {error}", plan.metadata.id, task.plan_hash)
    audit.append("rollback", task.requested_by, task.id,
                 {**record, "performed": True, "waves": waves, "why": why, "details": details, "from_journal": True})
    return ExecutionResult("rolled_back", [], f"{why}; rolled back waves {waves} from the journal", plan.metadata.id,
                           task.plan_hash, details)


__all__ = [
    "Crash",
    "Recovered",
    "crash_policy",
    "crashed_attempt",
    "first_unfinished",
    "healthy_waves",
    "journal_for",
    "recover",
    "rollback_from_journal",
]
