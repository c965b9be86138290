"""What the remediation ops (and the CLI) call: plan a finding, and run an approved task.

The Dagster ops in jobs/remediation.py are wiring only: they hand this module their
resources and turn its typed outcomes into metadata or a ``Failure``. Everything here is plain
Python, testable without Dagster.

Planning (:func:`plan_finding`): rebuild the finding from the warehouse partition (the run config
carries its scope and fingerprint, not its possibly huge target list), build its plans, ask the gate
about the read-only ``plan`` action and, as a preview, every wave's ``execute_wave`` (window assumed
open: it is decided again when the wave runs), then propose each plan to the task store:

* the gate fails (``Decision.gate_failed``: unreachable OPA, broken policy, undefined result) or
  refuses the ``plan`` action -> :class:`GateUnavailable`, nothing more proposed (a re-run retries:
  a transient error must not become a permanent rejection of that plan hash);
* any policy deny -> the task is ``rejected``; any wave needing approval -> ``pending_approval``;
  otherwise -> ``approved`` by ``policy:auto`` (TaskStore.propose, idempotent on the plan hash).
* one open plan per site x environment x platform (:func:`propose_plans`, :mod:`.queue`): the
  finding's plans go best-ranked first; only the first that waits for a person is proposed, and it
  supersedes the scope's older pending plans; the rest are deferred (``PlanningOutcome.deferred``).
  What planning left out (mixed-family groups, deferred plans) is audited once per finding
  (``planning_notes``). :func:`propose_day` plans a whole day this way (``qlrf plan propose``).
* the queue's work-in-progress limit (policy ``queue``, :func:`.queue.admit`): a new pending plan
  enters a full queue only by outranking the lowest-ranked pending plan (which is rejected
  "deferred: outranked by <id>"); otherwise it is deferred (``PlanningOutcome.queue_deferred``)
  and planned again from the next day's findings. Each planning run (one job run, one
  :func:`propose_day`) audits its queue deferrals in one ``queue_deferred`` record. propose_day
  builds every finding's plans first and proposes the findings best-ranked first, so one run does
  not fill the queue with plans it then displaces.

canary_only (:func:`run_canary`): a pending task whose decision says ``canary_allowed`` runs its
canary wave alone before the approval; the verdict is kept with the task (a failed canary rejects
it), and :func:`run_approved` then starts at wave 1.

Execution (:func:`run_approved`): load the approved task, refuse it unless the audit log holds its
authentic approval record (``TaskStore.approval_problem``: a state written straight into the
database is not an approval), resolve its driver, move it to
``running`` (exactly one caller can), run ``execute_plan`` with the human approval attached and
finish the task as succeeded | failed | rolled_back (``blocked`` by the gate mid-way finishes as
``failed``). :func:`dry_run_task` walks the same waves without changing anything or the task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from qlrf.inventory.contract import PLATFORMS
from qlrf.remediation.approvals import (
    AUTO_APPROVER,
    FINISH_STATES,
    NO_EXECUTOR,
    PATCH_PLAN,
    QUEUE_ACTOR,
    Task,
    TaskStateError,
    TaskStore,
)
from qlrf.remediation.canary.analyst import Analyst
from qlrf.remediation.canary.wiring import EnvAnalyst
from qlrf.remediation.dryrun import DryRunResult, RecordingDriver, dry_run_plan
from qlrf.remediation.executor import AuditSink, Driver, ExecutionResult, GateLike, execute_plan
from qlrf.remediation.findings import Finding, findings_from_partition
from qlrf.remediation.gate import Decision, gate_request
from qlrf.remediation.journal import DONE, FAILED, INTERRUPTED, ExecutionJournal
from qlrf.remediation.journaled import Checkpointing, JournaledDriver
from qlrf.remediation.planner import MIXED_GROUP, build_plans
from qlrf.remediation.plans import PatchPlan
from qlrf.remediation.policy import JournalPolicy, QueuePolicy, RemediationPolicy
from qlrf.remediation.queue import (
    admit,
    finding_day,
    is_plan,
    open_in_scope,
    plan_score,
    rank_plans,
    ranked_queue,
    scope_of,
)
from qlrf.remediation.recovery import Crash, crashed_attempt, journal_for, recover, rollback_from_journal
from qlrf.remediation.terraform import inventory_tags, route_plans
from qlrf.scoring.stages import BASELINE_MAX_AGE_DAYS
from qlrf.warehouse import PartitionMissing, Warehouse

PREVIEW_NOTE = ("execute_wave previews with the maintenance window assumed open and the canary assumed passed; "
                "every wave is decided again when it runs")
DONE_STATES = ("running", "succeeded", "failed", "rolled_back")

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    """The default log: say nothing."""


# --- warehouse reads -------------------------------------------------------------------------------


def environment_fleet_size(wh: Warehouse, day: str, environment: str) -> int:
    """VMs of `environment` on `day` across every materialised platform (the drift-delta denominator)."""
    present = [p for p in PLATFORMS if wh.exists("drift_scores", day, p)]
    if not present:
        return 0
    scores = wh.read_platforms("drift_scores", day, present).to_pylist()
    return int(sum(r["vms"] or 0 for r in scores if r["environment"] == environment))


def registry_for(wh: Warehouse, day: str, platform: str) -> pa.Table:
    """The golden-image registry the partition's drift was measured against."""
    return wh.read("golden_images", _baseline_for(wh, day, platform))


def registries_for(wh: Warehouse, day: str, platforms: list[str] | tuple[str, ...]) -> dict[str, pa.Table]:
    """platform -> :func:`registry_for`, each baseline read once (the platforms of a day share one)."""
    read: dict[str, pa.Table] = {}
    out = {}
    for platform in platforms:
        baseline = _baseline_for(wh, day, platform)
        if baseline not in read:
            read[baseline] = wh.read("golden_images", baseline)
        out[platform] = read[baseline]
    return out


def _baseline_for(wh: Warehouse, day: str, platform: str) -> str:
    baseline = None
    if wh.exists("vm_drift", day, platform):
        baseline = wh.run_metadata("vm_drift", day, platform).get("baseline_date")
    baseline = baseline or wh.latest_on_or_before("golden_images", day, BASELINE_MAX_AGE_DAYS)
    if baseline is None:
        raise PartitionMissing(f"no golden_images partition in force for {day}")
    return baseline


def scaling_groups_for(wh: Warehouse, day: str, platform: str) -> list[dict] | None:
    if not wh.exists("scaling_groups", day, platform):
        return None
    return wh.read("scaling_groups", day, platform).to_pylist()


def risk_scores_for(wh: Warehouse, day: str, platform: str, asset_ids) -> dict[str, float] | None:
    """asset_id -> risk score (qlrf/predict/risk.py) of the finding's VMs, when the day's vm_risk exists."""
    if not wh.exists("vm_risk", day, platform):
        return None
    from qlrf import sql

    con = sql.connect(threads=1)
    sql.relation(con, "vm_risk", wh.source("vm_risk", day, platform))
    return dict(sql.rows(con, "SELECT asset_id, risk_score FROM vm_risk WHERE list_contains($ids::VARCHAR[], asset_id)",
                         {"ids": list(asset_ids)}))


def find_finding(
    wh: Warehouse, policy: RemediationPolicy, day: str, platform: str, fingerprint: str
) -> tuple[Finding | None, list[Finding]]:
    """The finding with `fingerprint`, recomputed from the partition (None when the partition changed)."""
    findings = findings_from_partition(
        wh.source("drift_scores", day, platform), wh.source("vm_drift", day, platform), policy, day
    )
    return next((f for f in findings if f.fingerprint() == fingerprint), None), findings


# --- planning --------------------------------------------------------------------------------------


class GateUnavailable(RuntimeError):
    """The gate did not decide (error, unreachable OPA, refused the read-only plan action): propose nothing."""


def _unique(items: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(i) for i in items))


def _wave_preview(index: int, d: Decision) -> dict[str, Any]:
    return {"wave": index, "input": d.input, "allow": d.allow, "requires_approval": d.requires_approval,
            "deny": list(d.reasons), "approval_reasons": list(d.approval_reasons)}


def plan_decision(gate: GateLike, plan: PatchPlan, *, requested_by: str, fleet_size: int) -> dict:
    """The gate's verdict on proposing `plan`, as TaskStore.propose takes it (see the module docstring).

    Raises GateUnavailable rather than return a deny the gate did not mean: proposing is idempotent
    on the plan hash, so a transient outage recorded as a rejection could never be undone.
    """
    request = gate_request(plan, requested_by=requested_by, fleet_size=fleet_size, action="plan", window_is_open=True)
    decision = gate.decide(request)
    if not decision.allow:
        raise GateUnavailable(f"the gate did not allow the read-only plan action: {'; '.join(decision.reasons) or 'no reason'}")
    waves = []
    for index in range(len(plan.spec.waves)):
        wave_request = gate_request(plan, requested_by=requested_by, fleet_size=fleet_size, wave=index, window_is_open=True,
                                    canary_passed=True)
        wave_decision = gate.decide(wave_request)
        if wave_decision.gate_failed:
            raise GateUnavailable(f"the gate could not decide wave {index}: {'; '.join(wave_decision.reasons)}")
        waves.append(wave_decision)
    deny = _unique([*decision.reasons, *(r for d in waves for r in d.reasons)])
    if not deny and not all(d.allow or d.requires_approval for d in [decision, *waves]):
        deny = ["the gate neither allowed the plan nor asked for an approval"]
    needs = not deny and any(d.requires_approval for d in waves)
    # canary_only as the policy says: the canary may run before any approval when the gate allows it
    # on its own and only later waves wait (the approval sensor launches it; the verdict is recorded).
    canary_first = bool(needs and waves and waves[0].allow and plan.spec.waves[0].canary and len(waves) > 1)
    return {
        "allow": bool(decision.allow and not deny and all(d.allow for d in waves)),
        "requires_approval": bool(needs),
        "deny": deny,
        "approval_reasons": _unique(r for d in waves for r in d.approval_reasons),
        "approved": False,
        "source": decision.source,
        "input": request,
        "waves": [_wave_preview(i, d) for i, d in enumerate(waves)],
        "canary_allowed": canary_first,
        "note": PREVIEW_NOTE,
    }


@dataclass(frozen=True)
class Proposed:
    task_id: str
    plan_id: str
    plan_hash: str
    state: str

    def as_dict(self) -> dict[str, str]:
        return {"task_id": self.task_id, "plan_id": self.plan_id, "plan_hash": self.plan_hash, "state": self.state}


@dataclass
class PlanningOutcome:
    """What planning one finding did: ``finding`` None means it is no longer in the partition (stale)."""

    finding: Finding | None
    current: list[Finding]
    proposed: list[Proposed] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # plans left for later: their scope has an open plan
    queue_deferred: list[dict[str, Any]] = field(default_factory=list)  # left for later: the queue was full
    displaced: list[str] = field(default_factory=list)  # "<old task> by <new task>": outranked in a full queue

    def states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.proposed:
            counts[p.state] = counts.get(p.state, 0) + 1
        return counts


class PlanningFailed(GateUnavailable):
    """The gate failed on one plan; ``proposed`` lists the plans of the finding proposed before."""

    def __init__(self, plan_id: str, cause: GateUnavailable, proposed: list[Proposed]):
        super().__init__(f"{plan_id}: {cause}")
        self.plan_id, self.proposed = plan_id, list(proposed)


@dataclass
class _Prepared:
    """One finding rebuilt with its plans ranked, ready to propose."""

    outcome: PlanningOutcome
    plans: list[PatchPlan]
    environment: str
    fleet: int

    def best(self) -> int:
        return plan_score(self.plans[0]) if self.plans else -1


def _prepare(
    wh: Warehouse, policy: RemediationPolicy, *, day: str, platform: str, environment: str, fingerprint: str,
    requested_by: str,
) -> _Prepared:
    finding, current = find_finding(wh, policy, day, platform, fingerprint)
    outcome = PlanningOutcome(finding, current)
    if finding is None:
        return _Prepared(outcome, [], environment, 1)
    plans = build_plans(
        finding, wh.source("vm_drift", day, platform), registry_for(wh, day, platform), policy,
        scaling_groups_for(wh, day, platform), created_by=requested_by, skipped=outcome.skipped,
        risk_scores=risk_scores_for(wh, day, platform, finding.asset_ids),
    )
    plans = route_plans(plans, policy.terraform.parsed(), inventory_tags(wh, day, platform, finding.asset_ids),
                        notes=outcome.skipped)  # Terraform-managed targets: the plan patches the code instead
    fleet = environment_fleet_size(wh, day, environment) or max(1, len(finding.asset_ids))
    return _Prepared(outcome, rank_plans(plans), environment, fleet)


def _propose_prepared(store: TaskStore, gate: GateLike, prepared: _Prepared, policy: RemediationPolicy, *,
                      day: str, requested_by: str, log: Log) -> PlanningOutcome:
    outcome = prepared.outcome
    if outcome.finding is None:
        return outcome
    propose_plans(store, gate, prepared.plans, outcome, day=day, requested_by=requested_by, fleet_size=prepared.fleet,
                  log=log, limits=policy.queue)
    _audit_notes(store, outcome.finding, outcome, requested_by)
    return outcome


def plan_finding(
    wh: Warehouse,
    policy: RemediationPolicy,
    store: TaskStore,
    gate: GateLike,
    *,
    day: str,
    platform: str,
    environment: str,
    fingerprint: str,
    requested_by: str,
    log: Log = _quiet,
) -> PlanningOutcome:
    """Rebuild one finding, build its plans, ask the gate and propose them (see the module docstring)."""
    prepared = _prepare(wh, policy, day=day, platform=platform, environment=environment, fingerprint=fingerprint,
                        requested_by=requested_by)
    outcome = _propose_prepared(store, gate, prepared, policy, day=day, requested_by=requested_by, log=log)
    audit_queue(store, [outcome], policy.queue, day=day, requested_by=requested_by)
    return outcome


def newest_drift_day(wh: Warehouse) -> str:
    """The newest day with a drift_scores partition (what `qlrf plan propose` plans by default)."""
    days = [d for d in wh.dates("drift_scores") if any(wh.exists("drift_scores", d, p) for p in PLATFORMS)]
    if not days:
        raise PartitionMissing("no drift_scores partition in the warehouse: run `qlrf run` first")
    return days[-1]


def propose_day(
    wh: Warehouse,
    policy: RemediationPolicy,
    store: TaskStore,
    gate: GateLike,
    *,
    day: str,
    requested_by: str,
    site: str | None = None,
    log: Log = _quiet,
) -> list[PlanningOutcome]:
    """Plan every finding of `day` (optionally one site) as the planning job plans each one.

    Every finding's plans are built first and the findings proposed best-ranked first, so the
    queue's limit admits the most urgent plans without first admitting, then displacing, others.
    One ``queue_deferred`` audit record covers the whole run.
    """
    present = [p for p in PLATFORMS if wh.exists("drift_scores", day, p) and wh.exists("vm_drift", day, p)]
    if not present:
        raise PartitionMissing(f"no drift partition for {day}: run `qlrf run --date {day}` first")
    prepared = []
    for platform in present:
        findings = findings_from_partition(
            wh.source("drift_scores", day, platform), wh.source("vm_drift", day, platform), policy, day)
        for finding in findings:
            if site is not None and finding.site != site:
                continue
            prepared.append(_prepare(wh, policy, day=day, platform=platform, environment=finding.environment,
                                     fingerprint=finding.fingerprint(), requested_by=requested_by))
    order = sorted(range(len(prepared)), key=lambda i: (-prepared[i].best(), i))
    for i in order:
        _propose_prepared(store, gate, prepared[i], policy, day=day, requested_by=requested_by, log=log)
    outcomes = [p.outcome for p in prepared]
    audit_queue(store, outcomes, policy.queue, day=day, requested_by=requested_by)
    return outcomes


def audit_queue(store: TaskStore, outcomes: list[PlanningOutcome], limits: QueuePolicy, *, day: str,
                requested_by: str) -> None:
    """One ``queue_deferred`` record per planning run naming what the full queue left for later."""
    deferred = [d for o in outcomes for d in o.queue_deferred]
    displaced = [d for o in outcomes for d in o.displaced]
    if store.audit is None or not (deferred or displaced):
        return
    store.audit.append("queue_deferred", QUEUE_ACTOR, f"planning:{day}", {
        "day": day, "requested_by": requested_by, "max_pending": limits.max_pending,
        "max_pending_per_environment": dict(limits.max_pending_per_environment),
        "deferred": sorted(deferred, key=lambda d: (d["rank"], d["plan_id"])), "displaced": displaced,
    })


def propose_plans(
    store: TaskStore,
    gate: GateLike,
    ranked: list[PatchPlan],
    outcome: PlanningOutcome,
    *,
    day: str,
    requested_by: str,
    fleet_size: int,
    log: Log = _quiet,
    limits: QueuePolicy | None = None,
) -> None:
    """Propose the finding's plans, best-ranked first, keeping one open (pending) plan per scope.

    A plan that would wait for a person is proposed only if its scope has no open plan yet from
    this finding or a newer day; it then supersedes the scope's older pending plans. The others
    are deferred (noted, not proposed): the next finding of the scope plans them again. With
    `limits`, a new pending plan that does not replace its scope's open plan must also find room
    in the queue (:func:`.queue.admit`): it displaces an outranked plan or is deferred (one entry
    per scope: its best plan, and how many of the finding's plans wait with it).
    """
    queued: dict[str, Any] | None = None
    for plan in ranked:
        try:
            decision = plan_decision(gate, plan, requested_by=requested_by, fleet_size=fleet_size)
        except GateUnavailable as exc:
            raise PlanningFailed(plan.metadata.id, exc, outcome.proposed) from exc
        siblings = {p.task_id for p in outcome.proposed}  # this finding's other families: never superseded here
        open_tasks = [t for t in open_in_scope(store, plan) if t.plan_hash != plan.content_hash and t.id not in siblings]
        newer = [t for t in open_tasks if finding_day(t) > day]
        would_wait = bool(decision["requires_approval"] and not decision["allow"] and not decision["deny"])
        if would_wait and store.by_hash(plan.content_hash) is None and (newer or any(
                p.state == "pending_approval" for p in outcome.proposed)):
            holder = newer[0].id if newer else next(p.task_id for p in outcome.proposed if p.state == "pending_approval")
            note = (f"{plan.metadata.id} ({plan.spec.targets.count()} target(s), score {plan_score(plan)}) deferred: "
                    f"scope {'/'.join(scope_of(plan))} has an open plan ({holder}); planned again once it is decided")
            outcome.deferred.append(note)
            log(note)
            continue
        supersede = [t.id for t in open_tasks if finding_day(t) <= day] if not decision["deny"] else []
        displace: list[str] = []
        if limits is not None and would_wait and not supersede and store.by_hash(plan.content_hash) is None:
            if queued is not None:  # a better plan of this scope did not fit: neither does this one
                queued["plans"] += 1
                continue
            score, environment = plan_score(plan), plan.metadata.environment
            room = admit(ranked_queue(store), score, environment, limits.max_pending, limits.max_pending_per_environment)
            if not room.admit:
                queued = {"scope": "/".join(scope_of(plan)), "plan_id": plan.metadata.id, "rank": room.rank, "score": score,
                          "targets": plan.spec.targets.count(), "plans": 1, "limit": room.limit, "pool": room.pool}
                outcome.queue_deferred.append(queued)
                log(f"{plan.metadata.id} (score {score}, rank {room.rank}) deferred: the {room.pool} holds its limit of "
                    f"{room.limit} pending plan(s), all ranked at least as high; planned again with the next findings")
                continue
            displace = [room.displace.task.id] if room.displace is not None else []
        task = store.propose(plan, requested_by, decision, supersede=supersede, displace=displace)
        if displace and task.state == "pending_approval":
            outcome.displaced.append(f"{displace[0]} by {task.id}")
            log(f"{displace[0]}: deferred: outranked by {task.id} (the {room.pool} holds its limit)")
        log(f"{task.id} {plan.metadata.id}: {task.state} ({plan.spec.targets.count()} target(s), "
            f"risk {plan.metadata.risk_level}, {plan.metadata.autonomy_mode}){': ' + task.reason if task.reason else ''}")
        outcome.proposed.append(Proposed(task.id, plan.metadata.id, task.plan_hash, task.state))


def _audit_notes(store: TaskStore, finding: Finding, outcome: PlanningOutcome, requested_by: str) -> None:
    """What planning left out and why (mixed-family groups, missing images, deferred plans), once per finding."""
    if store.audit is None or not (outcome.skipped or outcome.deferred):
        return
    store.audit.append_once("planning_notes", requested_by, f"finding:{finding.fingerprint()}", {
        "scope": finding.scope, "day": finding.day, "kind": finding.kind,
        "mixed_family_groups": [n for n in outcome.skipped if n.startswith(MIXED_GROUP)],
        "skipped": outcome.skipped[:200], "deferred": outcome.deferred,
    })


# --- execution -------------------------------------------------------------------------------------


class ExecutionRefused(RuntimeError):
    """Nothing was started: no such task, not approved, or no driver (the task is left as it was)."""


@dataclass(frozen=True)
class ExecutionOutcome:
    """How running a task ended; ``skipped`` when another run had it (``note`` says why)."""

    task_id: str
    state: str
    reason: str = ""
    plan_id: str = ""
    result: ExecutionResult | None = None
    skipped: bool = False
    note: str = ""

    @property
    def succeeded(self) -> bool:
        return self.skipped or self.state == "succeeded"


def approval_of(task: Task) -> dict | None:
    """The human approval to present to the gate (None when the policy approved it on its own)."""
    if not task.approver or task.approver == AUTO_APPROVER:
        return None
    return {"plan_hash": task.plan_hash, "approver": task.approver}


def fleet_size_of(task: Task, plan: PatchPlan) -> int:
    """The environment fleet the plan was decided against (stored with the decision)."""
    value = (task.decision.get("input") or {}).get("fleet_size") if isinstance(task.decision, Mapping) else None
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return max(1, plan.spec.targets.count())


def _task_by_hash(store: TaskStore, plan_hash: str) -> Task:
    """The patch-plan task of `plan_hash`; an AI task of another type has no executor (refused by name)."""
    task = store.by_hash(plan_hash)
    if task is None:
        raise ExecutionRefused(f"no approval task for plan hash {plan_hash}")
    if task.kind != PATCH_PLAN:
        raise ExecutionRefused(f"{task.id} is an {task.kind}: {NO_EXECUTOR.format(task_type=task.task_type)}")
    return task


def _driver(task: Task, driver_for: Callable[[str], Driver]) -> Driver:
    try:
        driver = driver_for(task.platform)
        plan = task.plan()
        if plan.spec.terraform is not None:
            raise ValueError("Terraform-managed: changed through the Terraform code only (`qlrf plan terraform`); "
                             "apply the approved, checked plan file with terraform")
        if plan.spec.compliance is not None:  # apply_tags / detach_public_ip: the platform's compliance driver
            from qlrf.remediation.drivers.aws_compliance import compliance_driver

            return compliance_driver(plan, driver)
        return driver
    except Exception as exc:
        # Nothing started: the task stays approved, so re-executing after the fix resumes it.
        raise ExecutionRefused(f"{task.id}: no execution driver for {task.platform}: {type(exc).__name__}: {exc}") from exc


def run_approved(
    store: TaskStore,
    plan_hash: str,
    *,
    driver_for: Callable[[str], Driver],
    gate: GateLike,
    audit: AuditSink,
    actor: str,
    log: Log = _quiet,
    now: datetime | None = None,
    analyst: Analyst | None = None,
    journal: ExecutionJournal | None = None,
    crash_policy: JournalPolicy | None = None,
) -> ExecutionOutcome:
    """Execute the approved task of `plan_hash` once and finish it (see the module docstring).

    ``analyst``: the canary analysis after each wave (default: the plan's / policy's, from the environment).
    Crash-safe (:mod:`.journal`, :mod:`.recovery`): every step is journalled in the task database
    (``journal``, default: the store's database); a task left ``running`` by a killed run is rolled
    back or resumed from the journal here, as ``crash_policy`` (default: the policy file's
    ``journal`` section) says."""
    task = _task_by_hash(store, plan_hash)
    journal = journal or journal_for(store)
    if task.state == "running":
        crash = crashed_attempt(journal, task, crash_policy)
        if crash is not None:
            return _recover_running(store, task, crash, journal=journal, driver_for=driver_for, gate=gate, audit=audit,
                                    actor=actor, log=log, now=now, crash_policy=crash_policy,
                                    analyst=analyst if analyst is not None else EnvAnalyst())
    if task.state == "paused":
        return ExecutionOutcome(task.id, task.state, skipped=True,
                                note=f"{task.id} is paused after an inconclusive canary analysis: an approver continues it "
                                     f"or rolls it back (qlrf plan continue|rollback {task.id} --hash {task.plan_hash})")
    if task.state != "approved":
        if task.state in DONE_STATES:
            return ExecutionOutcome(task.id, task.state, skipped=True,
                                    note=f"{task.id} is already {task.state}: executed by another run, nothing to do")
        raise ExecutionRefused(f"{task.id} is {task.state}, not approved: refusing to execute plan {plan_hash}")
    unproven = store.approval_problem(task)  # a state set behind the store's back proves nothing
    if unproven:
        raise ExecutionRefused(f"refusing to execute: {unproven}")
    plan = task.plan()  # re-validates the stored plan against its hash
    driver = _driver(task, driver_for)
    paused = store.paused_choice(task)  # an approver's decision on a paused run: continue or roll back
    try:
        task = store.start(task.id, actor=actor)
    except TaskStateError as exc:
        return ExecutionOutcome(task.id, store.get(task.id).state, skipped=True, note=f"{task.id} not started here: {exc}")
    if paused is not None and paused[0] == "rollback":
        return _rollback_paused(store, task, plan, driver, journal=journal, gate=gate, audit=audit, actor=actor, now=now)
    first_wave = paused[1] if paused is not None and paused[1] is not None else (1 if canary_passed(task) else 0)
    attempt = journal.begin(task.id, plan.metadata.id, task.plan_hash, mode="execute", actor=actor)
    try:
        result = execute_plan(
            plan, driver=JournaledDriver(driver, attempt), gate=gate, audit=audit, approval=approval_of(task),
            requested_by=task.requested_by, fleet_size=fleet_size_of(task, plan), log=log, now=now,
            subject=task.id,  # one audit subject per task: proposal, approval and every wave
            first_wave=first_wave,  # after a canary that ran before the approval, or where a paused run stopped
            analyst=analyst if analyst is not None else EnvAnalyst(),
        )
    except BaseException as exc:
        if not isinstance(exc, Exception):  # interrupted (SIGTERM, Ctrl-C): the next run rolls back or resumes
            attempt.finish(INTERRUPTED, {"error": f"{type(exc).__name__}: {exc}"[:500]})
            log(f"{task.id}: interrupted; left running for the next execution to roll back or resume from the journal")
            raise
        attempt.finish(FAILED, {"error": f"{type(exc).__name__}: {exc}"[:500]})
        _record_crash(store, task, exc, log)  # an error: never leave the task "running"
        raise
    attempt.finish(DONE, result.summary())
    state = result.state if result.state != "blocked" else "failed"
    reason = result.reason if result.state != "blocked" else f"blocked by the gate: {result.reason}"
    next_wave = None
    if result.state == "paused":  # an inconclusive canary analysis: nothing further changed, a human decides
        next_wave = max(result.waves_done, default=first_wave - 1) + 1
        reason = f"paused for a human before wave {next_wave}, nothing further changed: {result.reason}"
    task = store.finish(task.id, state, reason[:2000] or state, next_wave=next_wave)
    return ExecutionOutcome(task.id, state, reason, plan.metadata.id, result)


def _rollback_paused(store: TaskStore, task: Task, plan: PatchPlan, driver: Driver, *, journal: ExecutionJournal,
                     gate: GateLike, audit: AuditSink, actor: str, now: datetime | None) -> ExecutionOutcome:
    """An approver chose to roll a paused plan back: restore every wave it changed from the journal's
    last driver checkpoint (the paused run's process is gone, and its driver's memory with it)."""
    saved = journal.latest_checkpoint(task.id)
    if saved is None or not isinstance(driver, Checkpointing):
        reason = ("cannot roll back the paused plan: no driver checkpoint in the journal; "
                  "a person must check what the journal shows was sent (qlrf plan journal)")
        task = store.finish(task.id, "failed", reason)
        return ExecutionOutcome(task.id, "failed", reason, plan.metadata.id)
    driver.restore(saved[0])
    attempt = journal.begin(task.id, plan.metadata.id, task.plan_hash, mode="rollback:paused", actor=actor)
    waves = sorted(set(journal.waves_started(task.id)) | ({0} if canary_passed(task) else set()))
    try:
        result = rollback_from_journal(plan, JournaledDriver(driver, attempt, restored=True), waves, gate=gate,
                                       audit=audit, task=task, approval=approval_of(task), fleet_size=fleet_size_of(task, plan),
                                       why="an approver chose to roll back the paused plan",
                                       canary_passed=canary_passed(task), now=now)
    except BaseException as exc:
        attempt.finish(FAILED, {"error": f"{type(exc).__name__}: {exc}"[:500]})
        _record_crash(store, task, exc, lambda _m: None)
        raise
    attempt.finish(DONE, result.summary())
    task = store.finish(task.id, result.state if result.state in FINISH_STATES else "failed", result.reason[:2000] or "rollback")
    return ExecutionOutcome(task.id, task.state, result.reason, plan.metadata.id, result)


def canary_waiting(task: Task) -> bool:
    """A pending canary_only task whose canary may run before the approval and has not run yet."""
    return (task.state == "pending_approval" and is_plan(task) and task.decision.get("canary_allowed") is True
            and "canary" not in task.decision)


def canary_passed(task: Task) -> bool:
    return (task.decision.get("canary") or {}).get("passed") is True


def run_canary(
    store: TaskStore,
    plan_hash: str,
    *,
    driver_for: Callable[[str], Driver],
    gate: GateLike,
    audit: AuditSink,
    actor: str,
    log: Log = _quiet,
    now: datetime | None = None,
    analyst: Analyst | None = None,
    journal: ExecutionJournal | None = None,
) -> ExecutionOutcome:
    """canary_only as the policy says: run the pending task's canary wave alone, before any approval.

    Journalled like :func:`run_approved`; a canary run killed mid-wave is always rolled back from the
    journal on the next call (and recorded as a failed canary, which rejects the task).

    The gate decides the canary wave again (no approval attached); healthy -> the verdict "passed"
    is kept with the task, which stays pending for the approval of the later waves; unhealthy or
    refused -> the canary is rolled back (or never ran) and the task is rejected. The task never
    moves to running here: the approval, when it comes, is for the plan hash as before.
    """
    task = _task_by_hash(store, plan_hash)
    journal = journal or journal_for(store)
    crash = crashed_attempt(journal, task, None) if canary_waiting(task) else None
    if crash is not None:
        return _recover_canary(store, task, crash, journal=journal, driver_for=driver_for, gate=gate, audit=audit,
                               actor=actor, log=log, now=now)
    if not canary_waiting(task):
        why = "its canary ran already" if "canary" in task.decision else (
            f"it is {task.state}" if task.state != "pending_approval" else "the gate did not allow its canary before approval")
        return ExecutionOutcome(task.id, task.state, skipped=True, note=f"{task.id}: no canary-only run: {why}")
    plan = task.plan()
    driver = _driver(task, driver_for)
    attempt = journal.begin(task.id, plan.metadata.id, task.plan_hash, mode="canary", actor=actor)
    try:
        result = execute_plan(
            plan, driver=JournaledDriver(driver, attempt), gate=gate, audit=audit, approval=None,
            requested_by=task.requested_by, fleet_size=fleet_size_of(task, plan), log=log, now=now, subject=task.id,
            stop_after=0, analyst=analyst if analyst is not None else EnvAnalyst(),
        )
    except BaseException as exc:
        attempt.finish(INTERRUPTED if not isinstance(exc, Exception) else FAILED, {"error": f"{type(exc).__name__}"})
        raise
    attempt.finish(DONE, result.summary())
    return _canary_verdict(store, task, plan, result, actor, log)


def _canary_verdict(store: TaskStore, task: Task, plan: PatchPlan, result: ExecutionResult, actor: str,
                    log: Log) -> ExecutionOutcome:
    """Keep a canary-only run's verdict with the task (a failed one rejects it)."""
    canary = result.waves[0] if result.waves else None
    analysis = (canary.details.get("canary_analysis") or {}) if canary else {}
    inconclusive = result.state == "paused" and analysis.get("verdict") == "inconclusive"  # a person decides
    verdict = {
        "passed": result.state == "paused" and not inconclusive,
        "inconclusive": inconclusive,
        "analysis": {k: analysis.get(k) for k in ("verdict", "score", "reason")} if analysis else None,
        "state": result.state,
        "reason": result.reason,
        "wave": canary.name if canary else None,
        "targets": canary.targets if canary else 0,
        "health": canary.health.as_dict() if canary and canary.health else None,
        "actor": actor,
    }
    task = store.record_canary(task.id, task.plan_hash, verdict)
    said = "passed" if verdict["passed"] else "inconclusive" if inconclusive else "failed"
    log(f"{task.id}: canary {said}: {result.reason}")
    return ExecutionOutcome(task.id, task.state, result.reason, plan.metadata.id, result)


def dry_run_task(
    store: TaskStore,
    plan_hash: str,
    *,
    driver_for: Callable[[str], RecordingDriver],
    gate: GateLike,
    audit: AuditSink,
    actor: str,
    log: Log = _quiet,
    now: datetime | None = None,
) -> DryRunResult:
    """Walk the task of `plan_hash` as its execution would, in any state, changing nothing.

    The task's approval and fleet size are presented to the gate as a real run would present them;
    the task itself is only read: a dry run never starts, finishes or expires it.
    """
    task = _task_by_hash(store, plan_hash)
    plan = task.plan()
    return dry_run_plan(
        plan, driver=_driver(task, driver_for), gate=gate, audit=audit, approval=approval_of(task),
        requested_by=task.requested_by, actor=actor, fleet_size=fleet_size_of(task, plan), now=now, subject=task.id, log=log,
    )


def _recover_running(store: TaskStore, task: Task, crash: Crash, *, journal: ExecutionJournal,
                     driver_for: Callable[[str], Driver], gate: GateLike, audit: AuditSink, actor: str, log: Log,
                     now: datetime | None, crash_policy: JournalPolicy | None,
                     analyst: Analyst | None = None) -> ExecutionOutcome:
    """A task a killed run left ``running``: roll back or resume it from the journal, then finish it
    (a resume runs the same canary analysis after each wave as the original run)."""
    unproven = store.approval_problem(task)
    if unproven:
        raise ExecutionRefused(f"refusing to recover: {unproven}")
    plan = task.plan()
    done = recover(store, task, crash, journal=journal, driver=_driver(task, driver_for), gate=gate, audit=audit,
                   actor=actor, approval=approval_of(task), fleet_size=fleet_size_of(task, plan), policy=crash_policy,
                   canary_passed=canary_passed(task), log=log, now=now, analyst=analyst)
    if done is None:
        return ExecutionOutcome(task.id, store.get(task.id).state, skipped=True,
                                note=f"{task.id}: another run is recovering it from the journal")
    task = store.finish(task.id, done.state, done.reason[:2000])
    return ExecutionOutcome(task.id, done.state, done.reason, plan.metadata.id, done.result)


def _recover_canary(store: TaskStore, task: Task, crash: Crash, *, journal: ExecutionJournal,
                    driver_for: Callable[[str], Driver], gate: GateLike, audit: AuditSink, actor: str, log: Log,
                    now: datetime | None) -> ExecutionOutcome:
    """A canary-only run that was killed: roll the canary back from the journal; the canary failed."""
    plan = task.plan()
    done = recover(store, task, crash, journal=journal, driver=_driver(task, driver_for), gate=gate, audit=audit,
                   actor=actor, approval=None, fleet_size=fleet_size_of(task, plan), policy=None, canary_passed=False,
                   log=log, now=now, mode="rollback")
    if done is None:
        return ExecutionOutcome(task.id, task.state, skipped=True, note=f"{task.id}: another run is recovering its canary")
    return _canary_verdict(store, task, plan, done.result, actor, log)


def _record_crash(store: TaskStore, task: Task, exc: BaseException, log: Log) -> None:
    what = "interrupted" if not isinstance(exc, Exception) else "execution error"
    try:
        store.finish(task.id, "failed", f"{what}: {type(exc).__name__}: {exc}; see the audit log for the waves done"[:2000])
    except Exception as finish_exc:  # noqa: BLE001 - report, but keep the original error
        log(f"{task.id}: could not record the failure: {finish_exc}")


__all__ = [
    "DONE_STATES",
    "ExecutionOutcome",
    "ExecutionRefused",
    "GateUnavailable",
    "PlanningFailed",
    "PlanningOutcome",
    "Proposed",
    "approval_of",
    "audit_queue",
    "canary_passed",
    "canary_waiting",
    "run_canary",
    "environment_fleet_size",
    "dry_run_task",
    "find_finding",
    "fleet_size_of",
    "plan_decision",
    "newest_drift_day",
    "plan_finding",
    "propose_day",
    "propose_plans",
    "registry_for",
    "run_approved",
    "scaling_groups_for",
]
