"""The drill runner: restore every VM of a drill's scope into the DR target, prove it runs, measure, clean up.

One drill = one execution of a sealed :class:`~qlrf.dr.plans.DrillPlan` over the VMs its scope
resolved to. The runner walks the plan's five steps phase by phase (every VM's copy is started
before any is waited on, so ten VMs take about as long as one), with the step's timeout from the
plan. A VM leaves the drill at the first step that fails or overruns; the others go on.

Measured per VM (rows of the ``dr_drills`` table, qlrf/dr/records.py):

* RTO = drill start -> the restored VM healthy (``verify`` passed);
* RPO achieved = drill start - the restore point's timestamp;
* each step's seconds and status (ok / skipped / failed / timed_out) with its detail;
* outcome: ``failed`` (a step failed, e.g. no restore point, no quota in the DR region, a VM that
  stopped), ``timed_out`` (a step overran its timeout), ``deviated`` (restored and healthy, but a
  steady-state check after it did not hold, e.g. RTO above the objective), else ``passed``; the
  reason names the step.

Time is an input: ``now()`` gives the drill's timestamps, ``monotonic()`` its durations (healthy_at =
start + elapsed), ``sleep`` the polling pause. Cleanup runs in ``finally``: after a failure, an
exception or Ctrl-C too (policy ``always``; ``on_success`` keeps a failed drill's resources for a
look; ``never`` keeps them). A run killed outright (SIGKILL) cannot clean up: every resource it made
is tagged, and :func:`sweep` (``qlrf dr cleanup``, and the start of the next drill for leftovers
older than the plan's longest possible run) removes them and journals what it removed.
Every step is in the audit log (subject = the drill id).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from qlrf.dr.drivers import (
    TAG_HASH,
    TAG_PLAN,
    TAG_STARTED,
    DrillContext,
    DrillDriver,
    DrillStepError,
    DrillVm,
    Resource,
    VmRun,
)
from qlrf.dr.plans import STEP_NAMES, DrillPlan
from qlrf.dr.records import TABLE, drill_history, record_drill
from qlrf.remediation.audit import AuditLog
from qlrf.warehouse import Warehouse

SEVERITY = {"failed": 3, "timed_out": 2, "deviated": 1, "passed": 0}


def new_drill_id(plan: DrillPlan, started_at: datetime) -> str:
    """``<plan id>-<YYYYmmdd>-<HHMMSS>-<6 hex>``, lowercase: it must fit every platform's tags and
    labels (GCE label values are lowercase letters, digits, ``-`` and ``_``)."""
    return f"{plan.metadata.id.lower()}-{started_at.astimezone(UTC):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}" if not isinstance(exc, DrillStepError) \
        else " ".join(str(exc).split())[:300]


@dataclass
class DrillResult:
    drill_id: str
    plan: DrillPlan
    started_at: datetime
    ended_at: datetime | None = None
    runs: list[VmRun] = field(default_factory=list)
    swept: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        return max((r.outcome or "failed" for r in self.runs), key=SEVERITY.__getitem__, default="failed")

    @property
    def reason(self) -> str | None:
        worst = [r for r in self.runs if r.outcome == self.outcome and r.reason]
        return f"{worst[0].vm.asset_id}: {worst[0].reason}" if worst else None

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for r in self.runs:
            counts[r.outcome or "failed"] = counts.get(r.outcome or "failed", 0) + 1
        rtos = [row["rto_seconds"] for row in self.rows if row["rto_seconds"] is not None]
        return {"drill_id": self.drill_id, "plan_id": self.plan.metadata.id, "plan_hash": self.plan.plan_hash,
                "platform": self.plan.metadata.platform, "target": self.plan.spec.target.region,
                "started_at": _iso(self.started_at), "ended_at": _iso(self.ended_at), "outcome": self.outcome,
                "reason": self.reason, "vms": len(self.runs), "outcomes": counts,
                "rto_seconds_max": max(rtos) if rtos else None,
                "removed": sum(len(r.removed) for r in self.runs) + len(self.swept),
                "cleaned_up": all(r.cleaned_up for r in self.runs)}

    def lines(self) -> list[str]:
        out = [f"drill {self.drill_id}: {self.outcome}" + (f" ({self.reason})" if self.reason else "")]
        for row in self.rows:
            rto = "-" if row["rto_seconds"] is None else f"{row['rto_seconds']:.1f}s"
            rpo = "-" if row["rpo_achieved_seconds"] is None else f"{row['rpo_achieved_seconds']:.0f}s"
            out.append(f"  {row['asset_id']:<24} {row['outcome']:<10} RTO {rto:>8}  RPO {rpo:>8}  "
                       f"cleaned_up {row['cleaned_up']}" + (f"  {row['reason']}" if row["reason"] else ""))
        return out


class DrillRunner:
    """Runs one drill with a driver, an audit log and a warehouse (the journal); clocks injected."""

    def __init__(self, driver: DrillDriver, *, audit: AuditLog, warehouse: Warehouse | None, actor: str,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, poll_interval: float = 1.0,
                 log: Callable[[str], None] = lambda _m: None):
        self.driver, self.audit, self.warehouse, self.actor = driver, audit, warehouse, actor
        self.now, self.monotonic, self.sleep, self.poll_interval, self.log = now, monotonic, sleep, poll_interval, log

    # -- the drill --------------------------------------------------------------------------------
    def run(self, plan: DrillPlan, vms: Iterable[DrillVm], *, drill_id: str | None = None,
            sweep_older_than: timedelta | None = None, on_step: Callable[[str, int], None] | None = None) -> DrillResult:
        started_at = self.now()
        drill_id = drill_id or new_drill_id(plan, started_at)
        t0 = self.monotonic()
        result = DrillResult(drill_id, plan, started_at, runs=[VmRun(vm) for vm in vms])
        ctx = DrillContext(drill_id, plan, started_at)
        self.audit.append("drill_started", self.actor, drill_id, {
            "plan_id": plan.metadata.id, "plan_hash": plan.plan_hash, "platform": plan.metadata.platform,
            "target": plan.spec.target.model_dump(exclude_none=True), "vms": [r.vm.asset_id for r in result.runs],
            "cleanup": plan.spec.cleanup, "started_at": _iso(started_at)})
        try:
            if sweep_older_than is not None:
                result.swept = self.sweep(plan, older_than=sweep_older_than, keep_drill=drill_id)
            for step in STEP_NAMES:
                active = [r for r in result.runs if r.active]
                if not active:
                    break
                self.log(f"{step}: {len(active)} VM(s)")
                self._step(step, ctx, active, t0)
                if on_step is not None:
                    on_step(step, len([r for r in result.runs if r.active]))
            for r in result.runs:
                if r.active:
                    self._after(ctx, r, t0)
        except BaseException as exc:  # Ctrl-C, a bug: no VM is left "in progress", and cleanup still runs
            for r in result.runs:
                if r.active:
                    r.outcome, r.reason = "failed", f"drill interrupted: {_one_line(exc)}"
            raise
        finally:
            self._cleanup(ctx, result)
            result.ended_at = self.now()
            self._journal(result)
        return result

    def _step(self, step: str, ctx: DrillContext, active: list[VmRun], t0: float) -> None:
        timeout = ctx.plan.spec.timeout(step)
        began, began_at = self.monotonic(), self.now()
        waiting: list[VmRun] = []
        for r in active:
            try:
                if step == "locate":
                    r.restore_point = self.driver.locate(ctx, r)
                    self._before(ctx, r)
                    if r.active:
                        self._done(r, step, began, began_at, "ok", {"restore_point": r.restore_point.id,
                                                                    "at": _iso(r.restore_point.at)})
                elif self.driver.start(step, ctx, r):
                    waiting.append(r)
                else:
                    self._done(r, step, began, began_at, "skipped", {"why": "nothing to do on this platform"})
            except Exception as exc:  # noqa: BLE001 - one VM's failure is that VM's outcome
                self._fail(r, step, began, began_at, "failed", _one_line(exc))
        while waiting:
            for r in list(waiting):
                try:
                    if self.driver.ready(step, ctx, r):
                        waiting.remove(r)
                        if step == "verify":
                            r.healthy_at = ctx.started_at + timedelta(seconds=self.monotonic() - t0)
                        self._done(r, step, began, began_at, "ok", {})
                except Exception as exc:  # noqa: BLE001
                    waiting.remove(r)
                    self._fail(r, step, began, began_at, "failed", _one_line(exc))
            if not waiting:
                break
            if self.monotonic() - began > timeout:
                for r in waiting:
                    self._fail(r, step, began, began_at, "timed_out", f"not done after the step's {timeout}s timeout")
                break
            self.sleep(self.poll_interval)
        for r in active:  # a step that finished but overran its timeout is timed out all the same
            if r.active and r.steps and r.steps[-1]["step"] == step and r.steps[-1]["seconds"] > timeout:
                r.steps[-1]["status"] = "timed_out"
                r.outcome, r.reason = "timed_out", f"{step}: took {r.steps[-1]['seconds']:.1f}s, above the step's {timeout}s timeout"
                r.healthy_at = None if step == "verify" else r.healthy_at
        self.audit.append("drill_step", self.actor, ctx.drill_id, {
            "step": step, "seconds": round(self.monotonic() - began, 3), "timeout_seconds": timeout,
            "vms": {r.vm.asset_id: {k: v for k, v in r.steps[-1].items() if k != "step"} for r in active
                    if r.steps and r.steps[-1]["step"] == step},
            "created": [x.as_dict() for r in active for x in r.resources]})

    def _done(self, r: VmRun, step: str, began: float, began_at: datetime, status: str, detail: dict) -> None:
        r.steps.append({"step": step, "started_at": _iso(began_at), "seconds": round(self.monotonic() - began, 3),
                        "status": status, "detail": detail})

    def _fail(self, r: VmRun, step: str, began: float, began_at: datetime, status: str, why: str) -> None:
        self._done(r, step, began, began_at, status, {"error": why})
        r.outcome, r.reason = status, f"{step}: {why}"

    def _before(self, ctx: DrillContext, r: VmRun) -> None:
        for c in ctx.plan.spec.steady_state.before:
            if c.check == "restore_point_age" and r.restore_point.at is not None:
                age = (ctx.started_at - r.restore_point.at).total_seconds()
                if age > c.max_seconds:
                    r.steps.append({"step": "steady_state_before", "started_at": _iso(ctx.started_at), "seconds": 0.0,
                                    "status": "failed", "detail": {"check": c.check, "age_seconds": age}})
                    r.outcome = "failed"
                    r.reason = (f"steady_state_before: restore_point_age: restore point {r.restore_point.id} is "
                                f"{age:.0f}s old, above {c.max_seconds}s")
                    return

    def _after(self, ctx: DrillContext, r: VmRun, t0: float) -> None:
        problems = []
        objectives = ctx.plan.spec.objectives
        for c in ctx.plan.spec.steady_state.after:
            if c.check == "rto_within_objective":
                rto = (r.healthy_at - ctx.started_at).total_seconds()
                why = None if rto <= objectives.rto_seconds else f"RTO {rto:.1f}s above the objective {objectives.rto_seconds}s"
            elif c.check == "rpo_within_objective":
                at = r.restore_point.at if r.restore_point else None
                rpo = None if at is None else (ctx.started_at - at).total_seconds()
                why = ("no restore point time: RPO unknown" if rpo is None else
                       None if rpo <= objectives.rpo_seconds else f"RPO {rpo:.0f}s above the objective {objectives.rpo_seconds}s")
            else:
                try:
                    why = self.driver.check(c.check, ctx, r)
                except Exception as exc:  # noqa: BLE001
                    why = _one_line(exc)
            if why:
                problems.append(f"{c.check}: {why}")
        r.steps.append({"step": "steady_state_after", "started_at": _iso(self.now()), "seconds": 0.0,
                        "status": "failed" if problems else "ok", "detail": {"problems": problems}})
        r.outcome = "deviated" if problems else "passed"
        r.reason = f"steady_state_after: {'; '.join(problems)}" if problems else None

    # -- cleanup and leftovers --------------------------------------------------------------------
    def _cleanup(self, ctx: DrillContext, result: DrillResult) -> None:
        policy = ctx.plan.spec.cleanup
        passed = all(r.outcome == "passed" for r in result.runs)
        if policy == "never" or (policy == "on_success" and not passed):
            for r in result.runs:
                r.cleaned_up = not r.resources
            self.audit.append("drill_cleanup", self.actor, ctx.drill_id, {
                "policy": policy, "kept": [x.as_dict() for r in result.runs for x in r.resources]})
            return
        try:
            tagged = self.driver.leftovers(ctx.target)
        except Exception as exc:  # noqa: BLE001 - remove what we know of, say we could not look
            self.log(f"cleanup: could not list tagged resources: {_one_line(exc)}")
            tagged = []
        by_vm: dict[str, list[Resource]] = {r.vm.asset_id: list(r.resources) for r in result.runs}
        for x in tagged:
            if x.drill_id == ctx.drill_id and x.asset_id in by_vm and all(
                    (y.kind, y.id) != (x.kind, x.id) for y in by_vm[x.asset_id]):
                by_vm[x.asset_id].append(x)
        for r in result.runs:
            resources = by_vm[r.vm.asset_id]
            r.removed = self.driver.remove(resources) if resources else []
            r.cleaned_up = all(e.get("removed") for e in r.removed)
        self.log(f"cleanup: removed {sum(len(r.removed) for r in result.runs)} resource(s)")
        self.audit.append("drill_cleanup", self.actor, ctx.drill_id, {
            "policy": policy, "removed": [e for r in result.runs for e in r.removed],
            "cleaned_up": all(r.cleaned_up for r in result.runs)})

    def sweep(self, plan: DrillPlan, *, older_than: timedelta = timedelta(0), keep_drill: str | None = None) -> list[dict]:
        """Remove what earlier drills left in ``plan``'s target (tagged ``qlrf:drill``) whose drill started
        more than ``older_than`` ago (a drill still running is left alone), journal it, and return it."""
        now = self.now()
        found = self.driver.leftovers(plan.spec.target, keep_drill=keep_drill)
        stale = []
        for x in found:
            started = _parse_time((x.detail or {}).get(TAG_STARTED))
            if started is None or now - started >= older_than:
                stale.append(x)
        if not stale:
            return []
        removed = self.driver.remove(stale)
        self.audit.append("drill_leftovers_removed", self.actor, keep_drill or "sweep", {
            "target": plan.spec.target.model_dump(exclude_none=True), "removed": removed})
        self.log(f"sweep: removed {sum(1 for e in removed if e.get('removed'))} leftover resource(s) of earlier drills")
        if self.warehouse is not None:
            self._journal_leftovers(plan, stale, removed, now)
        return removed

    def _journal_leftovers(self, plan: DrillPlan, stale: list[Resource], removed: list[dict], now: datetime) -> None:
        """A killed drill wrote no rows: give each of its VMs one (failed, naming the kill and what was
        removed). A drill that has rows (kept by its cleanup policy) gets its cleanup recorded."""
        results = {(e["kind"], e["id"]): e for e in removed}
        drills: dict[str, list[Resource]] = {}
        for x in stale:
            if x.drill_id and x.drill_id != "?":
                drills.setdefault(x.drill_id, []).append(x)
        for drill_id, resources in drills.items():
            tags = resources[0].detail or {}
            started = _parse_time(tags.get(TAG_STARTED)) or now
            old = drill_history(self.warehouse, started.date(), days=0)
            old_rows = [row for row in old.to_pylist() if row["drill_id"] == drill_id]
            per_vm: dict[str, list[dict]] = {}
            for x in resources:
                per_vm.setdefault(x.asset_id or "?", []).append(results[(x.kind, x.id)])
            rows = []
            if old_rows:
                for row in old_rows:
                    extra = per_vm.get(row["asset_id"], [])
                    done = json.loads(row["cleanup"] or "[]") + extra
                    rows.append({**row, "cleanup": json.dumps(done), "cleaned_up": all(e.get("removed") for e in done)})
            else:
                for asset_id, entries in per_vm.items():
                    rows.append({
                        "drill_id": drill_id, "plan_id": tags.get(TAG_PLAN) or "?", "plan_hash": tags.get(TAG_HASH) or "?",
                        "asset_id": asset_id, "platform": plan.metadata.platform, "target": plan.spec.target.region,
                        "started_at": started, "ended_at": now, "outcome": "failed",
                        "reason": "killed: the drill run ended before its journal; leftovers removed by a later sweep",
                        "steps": "[]", "cleaned_up": all(e.get("removed") for e in entries), "cleanup": json.dumps(entries)})
            record_drill(self.warehouse, rows)

    def _journal(self, result: DrillResult) -> None:
        plan = result.plan
        o = plan.spec.objectives
        for r in result.runs:
            rp = r.restore_point
            rto = None if r.healthy_at is None else (r.healthy_at - result.started_at).total_seconds()
            rpo = None if rp is None or rp.at is None else (result.started_at - rp.at).total_seconds()
            result.rows.append({
                "drill_id": result.drill_id, "plan_id": plan.metadata.id, "plan_hash": plan.plan_hash,
                "asset_id": r.vm.asset_id, "platform": plan.metadata.platform, "site": r.vm.site,
                "environment": r.vm.environment, "group": r.vm.group, "instance_type": r.vm.instance_type,
                "source_region": r.vm.region, "target": plan.spec.target.region,
                "restore_point_id": rp.id if rp else None, "restore_point_at": rp.at if rp else None,
                "started_at": result.started_at, "healthy_at": r.healthy_at, "ended_at": result.ended_at,
                "rto_seconds": rto, "rpo_achieved_seconds": rpo, "rto_objective_seconds": float(o.rto_seconds),
                "rpo_objective_seconds": float(o.rpo_seconds), "outcome": r.outcome or "failed", "reason": r.reason,
                "steps": json.dumps(r.steps), "cleaned_up": r.cleaned_up, "cleanup": json.dumps(r.removed)})
        if self.warehouse is not None and result.rows:
            result.files = record_drill(self.warehouse, result.rows)
        self.audit.append("drill_finished", self.actor, result.drill_id, {
            **result.summary(), "journal": result.files, "table": TABLE})


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def plan_max_duration(plan: DrillPlan) -> timedelta:
    """The longest a drill of ``plan`` can run (every step at its timeout): older leftovers are dead."""
    return timedelta(seconds=sum(s.timeout_seconds for s in plan.spec.steps) + 600)


__all__ = ["DrillResult", "DrillRunner", "new_drill_id", "plan_max_duration"]
