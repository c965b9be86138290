"""What the CLI (``qlrf dr drill``) and the Dagster job (``dr_drill_job``) call: one drill, end to end.

plan (validated, hash checked) -> scope resolved against the inventory -> the ``dr`` gate decision
(and approval) -> the runner (steps, measurements, cleanup, journal). A dry run resolves the scope,
locates each VM's newest restore point (read-only calls) and lists exactly what the drill would
create, with the gate's decision; it creates nothing and records no drill.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from qlrf.dr.authorise import Authorisation, authorise, drill_request
from qlrf.dr.drivers import DrillContext, DrillDriver, DrillVm, VmRun
from qlrf.dr.plans import DrillPlan
from qlrf.dr.runner import DrillResult, DrillRunner, new_drill_id, plan_max_duration
from qlrf.dr.scope import inventory_rows, resolve_scope
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.warehouse import Warehouse


class DrillRefused(RuntimeError):
    """The drill may not run now (denied, waiting for approval, approval used); nothing was created."""

    def __init__(self, message: str, authorisation: Authorisation | None = None):
        super().__init__(message)
        self.authorisation = authorisation


@dataclass
class DryRun:
    plan: DrillPlan
    inventory_day: str
    vms: list[DrillVm]
    would_create: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    restore_points: dict[str, str] = field(default_factory=dict)
    decision: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        p = self.plan
        d = self.decision
        verdict = "allowed" if d.get("allow") else ("needs approval: " + "; ".join(d.get("approval_reasons") or [])
                                                   if d.get("requires_approval") and not d.get("deny") else
                                                   "denied: " + "; ".join(d.get("deny") or []))
        out = [f"dry run of drill plan {p.metadata.id} ({p.plan_hash}): nothing is created",
               f"scope       {len(self.vms)} {p.metadata.platform} VM(s) from the inventory of {self.inventory_day}",
               f"target      {p.spec.target.region}; cleanup {p.spec.cleanup}; objectives RTO {p.spec.objectives.rto_seconds}s "
               f"RPO {p.spec.objectives.rpo_seconds}s",
               f"dr policy   {verdict}"]
        for vm in self.vms:
            out.append(f"{vm.asset_id} ({vm.name}, {vm.region})")
            if vm.asset_id in self.restore_points:
                out.append(f"  restore point {self.restore_points[vm.asset_id]}")
            if vm.asset_id in self.problems:
                out.append(f"  would fail: {self.problems[vm.asset_id]}")
            for line in self.would_create.get(vm.asset_id, []):
                out.append(f"  would create {line}")
        return out


def _at(at: datetime | None) -> str:
    return "no point in time: RPO unknown" if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def scope_of(plan: DrillPlan, warehouse: Warehouse, as_of: date) -> tuple[str, list[DrillVm]]:
    day, rows = inventory_rows(warehouse, plan.metadata.platform, as_of)
    return day, resolve_scope(plan, rows, f"the {plan.metadata.platform} inventory of {day}")


def dry_run(plan: DrillPlan, *, warehouse: Warehouse, driver: DrillDriver, gate: Any, requested_by: str,
            as_of: date, now: datetime | None = None) -> DryRun:
    day, vms = scope_of(plan, warehouse, as_of)
    decision = gate.decide(drill_request(plan, targets=len(vms), requested_by=requested_by)).as_dict()
    result = DryRun(plan, day, vms, decision={k: v for k, v in decision.items() if k != "input"})
    ctx = DrillContext("<drill-id>", plan, now or datetime.now(UTC))
    for vm in vms:
        run = VmRun(vm)
        try:
            run.restore_point = driver.locate(ctx, run)
            result.restore_points[vm.asset_id] = f"{run.restore_point.id} ({_at(run.restore_point.at)})"
            result.would_create[vm.asset_id] = driver.would_create(ctx, run)
        except Exception as exc:  # noqa: BLE001 - a dry run reports, it does not stop
            result.problems[vm.asset_id] = f"locate: {' '.join(str(exc).split())[:300]}"
    return result


def run_drill(plan: DrillPlan, *, warehouse: Warehouse, driver: DrillDriver, gate: Any, store: TaskStore | None,
              audit: AuditLog, requested_by: str, as_of: date, now: Callable[[], datetime] = lambda: datetime.now(UTC),
              poll_interval: float = 1.0, log: Callable[[str], None] = lambda _m: None,
              on_step: Callable[[str, int], None] | None = None, sweep: bool = True, outbox: Any = None,
              **clocks: Any) -> DrillResult:
    """Authorise and run one drill of ``plan``; :class:`DrillRefused` when it may not run now.

    ``outbox`` (:class:`qlrf.events.outbox.Outbox`): the finished drill goes out as ``dr.drill.completed``."""
    day, vms = scope_of(plan, warehouse, as_of)
    drill_id = new_drill_id(plan, now())
    auth = authorise(plan, targets=len(vms), gate=gate, store=store, audit=audit, requested_by=requested_by,
                     subject=drill_id)
    if not auth.allowed:
        raise DrillRefused(auth.message, auth)
    log(f"drill {drill_id}: {len(vms)} VM(s) from the inventory of {day}; {auth.message}")
    runner = DrillRunner(driver, audit=audit, warehouse=warehouse, actor=requested_by, now=now,
                         poll_interval=poll_interval, log=log, **clocks)
    try:
        result = runner.run(plan, vms, drill_id=drill_id, sweep_older_than=plan_max_duration(plan) if sweep else None,
                            on_step=on_step)
    except BaseException:
        if auth.task is not None and store is not None:
            store.finish(auth.task.id, "failed", "drill interrupted", actor=requested_by)
        raise
    if auth.task is not None and store is not None:
        store.finish(auth.task.id, "succeeded" if result.outcome == "passed" else "failed",
                     f"drill {drill_id}: {result.outcome}" + (f": {result.reason}" if result.reason else ""),
                     actor=requested_by)
    if outbox is not None:
        announce(outbox, result, now())
    return result


def announce(outbox: Any, result: DrillResult, now: datetime) -> None:
    """``dr.drill.completed`` with the drill's worst RTO and RPO over its VMs."""
    from qlrf.events.emit import drill_completed

    rtos = [r["rto_seconds"] for r in result.rows if r.get("rto_seconds") is not None]
    rpos = [r["rpo_achieved_seconds"] for r in result.rows if r.get("rpo_achieved_seconds") is not None]
    sites = sorted({r["site"] for r in result.rows if r.get("site")})
    site = result.plan.metadata.site or (sites[0] if len(sites) == 1 else "all")
    outbox.write(drill_completed(result.drill_id, site, result.plan.metadata.platform, result.outcome == "passed", now,
                                 rto_seconds=max(rtos) if rtos else None, rpo_seconds=max(rpos) if rpos else None))


__all__ = ["DrillRefused", "DryRun", "announce", "dry_run", "run_drill", "scope_of"]
