"""Remediation as jobs launched by sensors (never assets: they change machines, not data).

``remediation_planning_job`` (launched by ``drift_findings_sensor``, one run per finding):
rebuilds the finding from the warehouse partition named in its config (the run config carries the
finding's scope and fingerprint, not its possibly huge target list), builds its patch plans
(qlrf.remediation.planner.build_plans), asks the Rego gate about each and proposes it to the task store:

* the gate decides the ``plan`` action and, as a preview, every wave's ``execute_wave`` (with the
  maintenance window assumed open: it is checked again when each wave runs);
* the gate errs (unreachable OPA, a broken policy) or refuses the read-only ``plan`` action ->
  the run fails and nothing is proposed (a re-run retries: a transient error must not become a
  permanent rejection of that plan hash);
* any deny -> the task is ``rejected`` by policy (e.g. ``plan_only`` never executes: the plan is
  kept, visible and exportable, but this loop will not run it);
* any wave needing approval -> ``pending_approval`` (a human approves the whole plan hash before
  its canary runs; a canary_only environment therefore waits for approval too);
* otherwise -> ``approved`` by ``policy:auto``.

The decision (input, per-wave previews, reasons) is stored with the task and audited as
``policy_decision`` by ``TaskStore.propose``. Proposing is idempotent on the plan hash.

``remediation_execution_job`` (launched by ``remediation_approval_sensor``, run key = plan hash):
loads the approved task, resolves the platform's driver, moves the task to ``running`` (exactly one
caller can), runs ``execute_plan`` (the gate decides every wave again, with the human approval
attached) and finishes the task as succeeded | failed | rolled_back. A plan stopped by the gate
mid-way (``blocked``) finishes as ``failed`` with the gate's reasons. Any end but ``succeeded``
fails the run, so ``run_failure_alert_sensor`` alerts on it.
"""


from collections.abc import Mapping
from typing import Any

import pyarrow as pa
from dagster import Config, Failure, MetadataValue, OpExecutionContext, job, op

from qlrf.inventory.contract import PLATFORMS
from qlrf.remediation.approvals import AUTO_APPROVER, TaskStateError
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.planner import (
    Finding,
    RemediationPolicy,
    build_plans,
    findings_from_partition,
    gate_request,
)
from qlrf.remediation.plans import PatchPlan
from qlrf.scoring.stages import BASELINE_MAX_AGE_DAYS
from qlrf.warehouse import PartitionMissing, Warehouse
from resources.remediation import GateResource, RemediationResource
from resources.warehouse import WarehouseResource

PLANNING_JOB = "remediation_planning_job"
EXECUTION_JOB = "remediation_execution_job"
PLAN_OP = "plan_remediation"
EXECUTE_OP = "execute_approved_plan"
PREVIEW_NOTE = "execute_wave previews with the maintenance window assumed open; every wave is decided again when it runs"


# --- run config helpers (the sensors build runs with these) ----------------------------------------


class FindingConfig(Config):
    """Which finding to plan: its partition, scope and fingerprint (the targets are re-read)."""

    partition: str  # "<date>|<platform>", the drift partition
    day: str
    platform: str
    site: str
    environment: str
    kind: str
    fingerprint: str
    requested_by: str = "sensor:drift_findings_sensor"


class ExecutionConfig(Config):
    plan_hash: str


def planning_run_config(partition: str, finding: Finding, requested_by: str) -> dict:
    config = {
        "partition": partition, "day": finding.day, "platform": finding.platform, "site": finding.site,
        "environment": finding.environment, "kind": finding.kind, "fingerprint": finding.fingerprint(),
        "requested_by": requested_by,
    }
    return {"ops": {PLAN_OP: {"config": config}}}


def execution_run_config(plan_hash: str) -> dict:
    return {"ops": {EXECUTE_OP: {"config": {"plan_hash": plan_hash}}}}


# --- planning -------------------------------------------------------------------------------------


def environment_fleet_size(wh: Warehouse, day: str, environment: str) -> int:
    """VMs of `environment` on `day` across every materialised platform (the drift-delta denominator)."""
    present = [p for p in PLATFORMS if wh.exists("drift_scores", day, p)]
    if not present:
        return 0
    scores = wh.read_platforms("drift_scores", day, present).to_pylist()
    return int(sum(r["vms"] or 0 for r in scores if r["environment"] == environment))


def registry_for(wh: Warehouse, day: str, platform: str) -> pa.Table:
    """The golden-image registry the partition's drift was measured against."""
    baseline = None
    if wh.exists("vm_drift", day, platform):
        baseline = wh.run_metadata("vm_drift", day, platform).get("baseline_date")
    baseline = baseline or wh.latest_on_or_before("golden_images", day, BASELINE_MAX_AGE_DAYS)
    if baseline is None:
        raise PartitionMissing(f"no golden_images partition in force for {day}")
    return wh.read("golden_images", baseline)


def scaling_groups_for(wh: Warehouse, day: str, platform: str) -> list[dict] | None:
    if not wh.exists("scaling_groups", day, platform):
        return None
    return wh.read("scaling_groups", day, platform).to_pylist()


def _unique(items) -> list[str]:
    return list(dict.fromkeys(str(i) for i in items))


# How qlrf/gate.py words a fail-closed deny that is not the policy's decision (engine or OPA error).
GATE_ERRORS = ("OPA ", "undefined decision", "malformed decision", "input is not a JSON document", "policy evaluation failed",
               "compiling ", "embedded policy evaluation needs")


class GateUnavailable(RuntimeError):
    """The gate did not decide (error, unreachable OPA, refused the read-only plan action): propose nothing."""


def _gate_error(decision: Any) -> str | None:
    if decision.allow or decision.requires_approval or decision.approval_reasons or len(decision.reasons) != 1:
        return None
    reason = decision.reasons[0]
    return reason if reason.startswith(GATE_ERRORS) or ": invalid Rego" in reason else None


def plan_decision(gate: Any, plan: PatchPlan, *, requested_by: str, fleet_size: int) -> dict:
    """The gate's verdict on proposing `plan` (see the module docstring), as TaskStore.propose takes it.

    Raises GateUnavailable rather than return a deny the gate did not mean: proposing is idempotent
    on the plan hash, so a transient outage recorded as a rejection could never be undone.
    """
    request = gate_request(plan, requested_by=requested_by, fleet_size=fleet_size, action="plan")
    decision = gate.decide(request)
    if not decision.allow:
        raise GateUnavailable(f"the gate did not allow the read-only plan action: {'; '.join(decision.reasons) or 'no reason'}")
    waves = []
    for index in range(len(plan.spec.waves)):
        wave_request = gate_request(plan, requested_by=requested_by, fleet_size=fleet_size, wave=index)
        wave_request["maintenance_window_open"] = True
        wave_decision = gate.decide(wave_request)
        error = _gate_error(wave_decision)
        if error:
            raise GateUnavailable(f"the gate could not decide wave {index}: {error}")
        waves.append(wave_decision)
    deny = _unique([*decision.reasons, *(r for d in waves for r in d.reasons)])
    if not deny and not all(d.allow or d.requires_approval for d in [decision, *waves]):
        deny = ["the gate neither allowed the plan nor asked for an approval"]
    needs = not deny and any(d.requires_approval for d in waves)
    return {
        "allow": bool(decision.allow and not deny and all(d.allow for d in waves)),
        "requires_approval": bool(needs),
        "deny": deny,
        "approval_reasons": _unique(r for d in waves for r in d.approval_reasons),
        "approved": False,
        "source": decision.source,
        "input": request,
        "waves": [
            {"wave": i, "input": d.input, "allow": d.allow, "requires_approval": d.requires_approval,
             "deny": list(d.reasons), "approval_reasons": list(d.approval_reasons)}
            for i, d in enumerate(waves)
        ],
        "note": PREVIEW_NOTE,
    }


def find_finding(config: FindingConfig, wh: Warehouse, policy: RemediationPolicy) -> tuple[Finding | None, list[Finding]]:
    """The finding `config` names, recomputed from the partition (None when the partition changed)."""
    findings = findings_from_partition(
        wh.source("drift_scores", config.day, config.platform),
        wh.source("vm_drift", config.day, config.platform),
        policy,
        config.day,
    )
    for finding in findings:
        if finding.fingerprint() == config.fingerprint:
            return finding, findings
    return None, findings


@op(
    name=PLAN_OP,
    description="Rebuild a finding, build its patch plans, ask the Rego gate and propose them for approval.",
    tags={"qlrf/stage": "remediation"},
)
def plan_remediation(
    context: OpExecutionContext,
    config: FindingConfig,
    warehouse: WarehouseResource,
    remediation: RemediationResource,
    gate: GateResource,
) -> list[dict]:
    wh = warehouse.get()
    policy = remediation.policy()
    try:
        finding, current = find_finding(config, wh, policy)
    except PartitionMissing as exc:
        raise Failure(f"cannot plan {config.partition}: {exc}") from exc
    if finding is None:
        same_scope = [f for f in current if (f.site, f.environment) == (config.site, config.environment)]
        context.log.warning(
            f"finding {config.fingerprint[:12]} of {config.partition} ({config.platform}/{config.site}/{config.environment}) "
            f"is no longer in the partition (rematerialised since the sensor saw it: "
            f"{len(same_scope)} current finding(s) for that scope, each with its own sensor request); nothing planned"
        )
        context.add_output_metadata({"plans": 0, "stale": True})
        return []
    skipped: list[str] = []
    plans = build_plans(
        finding, wh.source("vm_drift", config.day, config.platform), registry_for(wh, config.day, config.platform),
        policy, scaling_groups_for(wh, config.day, config.platform), created_by=config.requested_by, skipped=skipped,
    )
    for note in skipped:
        context.log.warning(f"not planned: {note}")
    fleet = environment_fleet_size(wh, config.day, config.environment) or max(1, len(finding.asset_ids))
    store, engine = remediation.store(), gate.get()
    proposed = []
    try:
        for plan in plans:
            try:
                decision = plan_decision(engine, plan, requested_by=config.requested_by, fleet_size=fleet)
            except GateUnavailable as exc:
                raise Failure(
                    f"{plan.metadata.id}: {exc}. Nothing proposed for it; re-execute this run once the gate answers "
                    f"({len(proposed)} plan(s) of this finding were proposed before)"
                ) from exc
            task = store.propose(plan, config.requested_by, decision)
            context.log.info(
                f"{task.id} {plan.metadata.id}: {task.state} ({plan.spec.targets.count()} target(s), "
                f"risk {plan.metadata.risk_level}, {plan.metadata.autonomy_mode}){': ' + task.reason if task.reason else ''}"
            )
            proposed.append({"task_id": task.id, "plan_id": plan.metadata.id, "plan_hash": task.plan_hash, "state": task.state})
    finally:
        engine.close()
    states: dict[str, int] = {}
    for p in proposed:
        states[p["state"]] = states.get(p["state"], 0) + 1
    context.add_output_metadata({
        "finding": finding.summary(),
        "plans": len(proposed),
        "states": MetadataValue.json(states),
        "tasks": MetadataValue.json(proposed),
        "skipped_targets": len(skipped),
    })
    return proposed


@job(
    name=PLANNING_JOB,
    description="Plan one drift finding: patch plans, gate decisions, approval tasks. Launched by drift_findings_sensor.",
    tags={"qlrf/kind": "remediation-planning"},
)
def remediation_planning_job():
    plan_remediation()


# --- execution ------------------------------------------------------------------------------------


def approval_of(task: Any) -> dict | None:
    """The human approval to present to the gate (None when the policy approved it on its own)."""
    if not task.approver or task.approver == AUTO_APPROVER:
        return None
    return {"plan_hash": task.plan_hash, "approver": task.approver}


def fleet_size_of(task: Any, plan: PatchPlan) -> int:
    """The environment fleet the plan was decided against (stored with the decision)."""
    value = (task.decision.get("input") or {}).get("fleet_size") if isinstance(task.decision, Mapping) else None
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return max(1, plan.spec.targets.count())


@op(
    name=EXECUTE_OP,
    description="Execute one approved patch plan wave by wave through its platform driver, under the gate.",
    tags={"qlrf/stage": "remediation"},
)
def execute_approved_plan(
    context: OpExecutionContext, config: ExecutionConfig, remediation: RemediationResource, gate: GateResource
) -> dict:
    store = remediation.store()
    task = store.by_hash(config.plan_hash)
    if task is None:
        raise Failure(f"no approval task for plan hash {config.plan_hash}")
    if task.state != "approved":
        if task.state in ("running", "succeeded", "failed", "rolled_back"):
            context.log.warning(f"{task.id} is already {task.state}: executed by another run, nothing to do")
            return {"task_id": task.id, "state": task.state, "skipped": True}
        raise Failure(f"{task.id} is {task.state}, not approved: refusing to execute plan {config.plan_hash}")
    plan = task.plan()  # re-validates the stored plan against its hash
    try:
        driver = remediation.driver(task.platform)
    except Exception as exc:
        # Nothing started: the task stays approved, so re-executing this run after the fix resumes it.
        raise Failure(f"{task.id}: no execution driver for {task.platform}: {type(exc).__name__}: {exc}") from exc
    try:
        task = store.start(task.id, actor=f"dagster:{context.run_id}")
    except TaskStateError as exc:
        context.log.warning(f"{task.id} not started here: {exc}")
        return {"task_id": task.id, "state": store.get(task.id).state, "skipped": True}
    engine = gate.get()
    try:
        result = execute_plan(
            plan, driver=driver, gate=engine, audit=remediation.audit(), approval=approval_of(task),
            requested_by=task.requested_by, fleet_size=fleet_size_of(task, plan), log=context.log.info,
            subject=task.id,  # one audit subject per task: proposal, approval and every wave
        )
    except BaseException as exc:  # an error, or the run interrupted (SIGTERM): never leave the task "running"
        what = "interrupted" if not isinstance(exc, Exception) else "execution error"
        try:
            store.finish(task.id, "failed", f"{what}: {type(exc).__name__}: {exc}; see the audit log for the waves done"[:2000])
        except Exception as finish_exc:  # noqa: BLE001 - report, but keep the original error
            context.log.error(f"{task.id}: could not record the failure: {finish_exc}")
        raise
    finally:
        engine.close()
    state = result.state if result.state != "blocked" else "failed"
    reason = result.reason if result.state != "blocked" else f"blocked by the gate: {result.reason}"
    task = store.finish(task.id, state, reason[:2000] or state)
    summary = result.summary()
    context.add_output_metadata({"task_id": task.id, "state": state, "execution": MetadataValue.json(summary)})
    if state != "succeeded":
        raise Failure(f"{task.id} ({plan.metadata.id}) {state}: {reason}", metadata={"execution": MetadataValue.json(summary)})
    return {"task_id": task.id, "state": state, "waves": len(result.waves)}


@job(
    name=EXECUTION_JOB,
    description="Execute one approved patch plan (run key = plan hash). Launched by remediation_approval_sensor.",
    tags={"qlrf/kind": "remediation-execution"},
)
def remediation_execution_job():
    execute_approved_plan()


__all__ = [
    "EXECUTE_OP",
    "EXECUTION_JOB",
    "PLANNING_JOB",
    "PLAN_OP",
    "ExecutionConfig",
    "FindingConfig",
    "GateUnavailable",
    "execution_run_config",
    "plan_decision",
    "planning_run_config",
    "remediation_execution_job",
    "remediation_planning_job",
]
