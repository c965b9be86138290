"""Remediation as jobs launched by sensors (never assets: they change machines, not data).

``remediation_planning_job`` (launched by ``drift_findings_sensor``, one run per finding) and
``remediation_execution_job`` (launched by ``remediation_approval_sensor``, run key = plan hash) are
Dagster wiring over qlrf.remediation.service: the ops hand it their resources and turn its typed
outcomes into output metadata or a ``Failure`` (any execution end but ``succeeded`` fails the run,
so ``run_failure_alert_sensor`` alerts on it). What planning and execution do, and why, is
documented in qlrf/remediation/service.py.
"""

from dagster import Config, Failure, MetadataValue, OpExecutionContext, job, op

from qlrf.remediation import service
from qlrf.remediation.findings import Finding
from qlrf.tenancy.scope import acts_for_every_org
from qlrf.warehouse import PartitionMissing
from resources.remediation import GateResource, RemediationResource
from resources.warehouse import WarehouseResource

PLANNING_JOB = "remediation_planning_job"
EXECUTION_JOB = "remediation_execution_job"
PLAN_OP = "plan_remediation"
EXECUTE_OP = "execute_approved_plan"


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
    """Which approved plan to execute; ``dry_run`` walks its waves and lists the cloud calls instead;
    ``canary_only`` runs a pending canary_only plan's canary wave alone, before its approval."""

    plan_hash: str
    dry_run: bool = False
    canary_only: bool = False


def planning_run_config(partition: str, finding: Finding, requested_by: str) -> dict:
    config = {
        "partition": partition, "day": finding.day, "platform": finding.platform, "site": finding.site,
        "environment": finding.environment, "kind": finding.kind, "fingerprint": finding.fingerprint(),
        "requested_by": requested_by,
    }
    return {"ops": {PLAN_OP: {"config": config}}}


def execution_run_config(plan_hash: str, *, dry_run: bool = False, canary_only: bool = False) -> dict:
    config: dict = {"plan_hash": plan_hash}
    if dry_run:
        config["dry_run"] = True
    if canary_only:
        config["canary_only"] = True
    return {"ops": {EXECUTE_OP: {"config": config}}}


# --- planning -------------------------------------------------------------------------------------


def _stale_warning(config: FindingConfig, outcome: service.PlanningOutcome) -> str:
    same_scope = [f for f in outcome.current if (f.site, f.environment) == (config.site, config.environment)]
    return (
        f"finding {config.fingerprint[:12]} of {config.partition} ({config.platform}/{config.site}/{config.environment}) "
        f"is no longer in the partition (rematerialised since the sensor saw it: "
        f"{len(same_scope)} current finding(s) for that scope, each with its own sensor request); nothing planned"
    )


@op(
    name=PLAN_OP,
    description="Rebuild a finding, build its patch plans, ask the Rego gate and propose them for approval.",
    tags={"qlrf/stage": "remediation"},
)
@acts_for_every_org("plan_remediation")
def plan_remediation(
    context: OpExecutionContext,
    config: FindingConfig,
    warehouse: WarehouseResource,
    remediation: RemediationResource,
    gate: GateResource,
) -> list[dict]:
    engine = gate.get()
    try:
        outcome = service.plan_finding(
            warehouse.get(), remediation.policy(), remediation.store(), engine, day=config.day, platform=config.platform,
            environment=config.environment, fingerprint=config.fingerprint, requested_by=config.requested_by,
            log=context.log.info,
        )
    except PartitionMissing as exc:
        raise Failure(f"cannot plan {config.partition}: {exc}") from exc
    except service.PlanningFailed as exc:
        raise Failure(
            f"{exc}. Nothing proposed for it; re-execute this run once the gate answers "
            f"({len(exc.proposed)} plan(s) of this finding were proposed before)"
        ) from exc
    finally:
        engine.close()
    if outcome.finding is None:
        context.log.warning(_stale_warning(config, outcome))
        context.add_output_metadata({"plans": 0, "stale": True})
        return []
    for note in outcome.skipped:
        context.log.warning(f"not planned: {note}")
    for note in outcome.deferred:
        context.log.info(f"deferred: {note}")
    proposed = [p.as_dict() for p in outcome.proposed]
    context.add_output_metadata({
        "finding": outcome.finding.summary(),
        "plans": len(proposed),
        "states": MetadataValue.json(outcome.states()),
        "tasks": MetadataValue.json(proposed),
        "skipped_targets": len(outcome.skipped),
        "deferred_plans": len(outcome.deferred),
        "queue_deferred": MetadataValue.json(outcome.queue_deferred),  # the queue's limit was full (audited)
        "displaced": MetadataValue.json(outcome.displaced),
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


@op(
    name=EXECUTE_OP,
    description="Execute one approved patch plan wave by wave through its platform driver, under the gate.",
    tags={"qlrf/stage": "remediation"},
)
@acts_for_every_org("execute_approved_plan")
def execute_approved_plan(
    context: OpExecutionContext, config: ExecutionConfig, remediation: RemediationResource, gate: GateResource
) -> dict:
    if config.dry_run:
        return _dry_run(context, config, remediation, gate)
    run = service.run_canary if config.canary_only else service.run_approved
    engine = gate.get()
    try:
        outcome = run(
            remediation.store(), config.plan_hash, driver_for=remediation.driver, gate=engine,
            audit=remediation.execution_audit(), actor=f"dagster:{context.run_id}", log=context.log.info,
        )
    except service.ExecutionRefused as exc:
        raise Failure(str(exc)) from exc
    finally:
        engine.close()
    if outcome.skipped:
        context.log.warning(outcome.note)
        return {"task_id": outcome.task_id, "state": outcome.state, "skipped": True}
    summary = MetadataValue.json(outcome.result.summary())
    context.add_output_metadata({"task_id": outcome.task_id, "state": outcome.state, "execution": summary})
    if config.canary_only and outcome.result.state == "paused":
        return {"task_id": outcome.task_id, "state": outcome.state, "canary": "passed"}
    if outcome.state == "paused":  # an inconclusive canary analysis: waits for an approver, not a failed run
        context.log.warning(f"{outcome.task_id} ({outcome.plan_id}) paused: {outcome.reason}")
        return {"task_id": outcome.task_id, "state": outcome.state, "waves": len(outcome.result.waves)}
    if outcome.state != "succeeded":
        raise Failure(f"{outcome.task_id} ({outcome.plan_id}) {outcome.state}: {outcome.reason}", metadata={"execution": summary})
    return {"task_id": outcome.task_id, "state": outcome.state, "waves": len(outcome.result.waves)}


def _dry_run(context: OpExecutionContext, config: ExecutionConfig, remediation: RemediationResource,
             gate: GateResource) -> dict:
    """Walk the plan's waves under the gate and list every cloud call; nothing changes, the task neither."""
    engine = gate.get()
    try:
        result = service.dry_run_task(
            remediation.store(), config.plan_hash, driver_for=lambda platform: remediation.driver(platform, dry_run=True),
            gate=engine, audit=remediation.audit(), actor=f"dagster:{context.run_id}", log=context.log.info,
        )
    except service.ExecutionRefused as exc:
        raise Failure(str(exc)) from exc
    finally:
        engine.close()
    if result.error:
        raise Failure(f"dry run of {result.plan_id} stopped: {result.error}",
                      metadata={"calls": MetadataValue.json([c.as_dict() for c in result.calls])})
    context.add_output_metadata({
        "dry_run": True,
        "would_run": result.would_run,
        "calls": MetadataValue.json([c.as_dict() for c in result.calls]),
        "listing": MetadataValue.md("\n".join(f"    {line}" for line in result.lines())),
    })
    return {"plan_id": result.plan_id, "dry_run": True, "would_run": result.would_run, "calls": len(result.calls),
            "error": result.error}


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
    "execution_run_config",
    "planning_run_config",
    "remediation_execution_job",
    "remediation_planning_job",
]
