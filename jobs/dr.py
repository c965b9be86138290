"""Disaster-recovery drills as a Dagster job: one run per drill (never an asset: a drill creates and
removes cloud resources; what it *measured* is data, recorded as a materialisation of ``dr_drills``).

``dr_drill_job`` runs one op over qlrf.dr.service.run_drill: the plan (a file path or the YAML
itself, hash checked), its scope from the inventory, the Rego ``dr`` decision (and approval, via the
task store), the steps, cleanup and the journal rows. The op reports the drill's figures as output
metadata and an ``AssetMaterialization`` of ``dr_drills`` (partition-free: the rows live in
``dr_drills/date=<start day>/platform=<p>``). A drill that did not pass fails the run (after
recording it), so ``run_failure_alert_sensor`` alerts on it; a refused drill (denied, waiting for
approval) fails it too, naming why.
"""

from datetime import UTC, date, datetime

from dagster import AssetMaterialization, Config, Failure, MetadataValue, OpExecutionContext, job, op

from qlrf.tenancy.scope import acts_for_every_org
from resources.remediation import GateResource, RemediationResource
from resources.warehouse import WarehouseResource

DRILL_JOB = "dr_drill_job"
DRILL_OP = "run_dr_drill"


class DrillConfig(Config):
    """Which drill: ``plan_file`` (a path) or ``plan_yaml`` (the document); ``as_of`` the inventory day."""

    plan_file: str | None = None
    plan_yaml: str | None = None
    as_of: str | None = None  # YYYY-MM-DD; default: today (UTC)
    requested_by: str = "dagster:dr_drill_job"


def drill_run_config(*, plan_file: str | None = None, plan_yaml: str | None = None, as_of: str | None = None) -> dict:
    config = {k: v for k, v in {"plan_file": plan_file, "plan_yaml": plan_yaml, "as_of": as_of}.items() if v}
    return {"ops": {DRILL_OP: {"config": config}}}


def _dr_gate(gate: GateResource):
    from qlrf.dr.authorise import DR_DECISION_PATH
    from qlrf.remediation.gate import Gate

    if gate.opa_url:
        return Gate.remote(gate.opa_url, token=gate.opa_token or None, decision_path=DR_DECISION_PATH)
    if gate.policy_dir:
        return Gate.embedded(gate.policy_dir, decision_path=DR_DECISION_PATH)
    return Gate.from_env(decision_path=DR_DECISION_PATH)


@op(name=DRILL_OP, description="Run one DR drill: gate, restore into the DR target, verify, measure, clean up, journal.",
    tags={"qlrf/stage": "dr"})
@acts_for_every_org("run_dr_drill")
def run_dr_drill(context: OpExecutionContext, config: DrillConfig, warehouse: WarehouseResource,
                 remediation: RemediationResource, gate: GateResource) -> dict:
    from qlrf.dr.drivers import drill_driver_for
    from qlrf.dr.plans import load_drill_plan, parse_drill_plan
    from qlrf.dr.service import DrillRefused, run_drill
    from qlrf.events.outbox import Outbox

    if bool(config.plan_file) == bool(config.plan_yaml):
        raise Failure("give exactly one of plan_file or plan_yaml")
    try:
        plan = load_drill_plan(config.plan_file) if config.plan_file else parse_drill_plan(config.plan_yaml, "run config")
    except ValueError as exc:
        raise Failure(str(exc)) from exc
    as_of = date.fromisoformat(config.as_of) if config.as_of else datetime.now(UTC).date()
    engine, driver = _dr_gate(gate), drill_driver_for(plan.metadata.platform)
    try:
        result = run_drill(plan, warehouse=warehouse.get(), driver=driver, gate=engine, store=remediation.store(),
                           audit=remediation.audit(), requested_by=config.requested_by, as_of=as_of, log=context.log.info,
                           outbox=Outbox(remediation.database_url))
    except DrillRefused as exc:
        raise Failure(f"drill {plan.metadata.id} not run: {exc}") from exc
    finally:
        engine.close()
        driver.close()
    summary = result.summary()
    rows = [{k: v for k, v in r.items() if k in ("asset_id", "outcome", "reason", "rto_seconds", "rpo_achieved_seconds",
                                                 "cleaned_up")} for r in result.rows]
    metadata = {"drill_id": result.drill_id, "outcome": result.outcome, "vms": len(result.rows),
                "rto_seconds_max": MetadataValue.float(float(summary["rto_seconds_max"] or 0.0)),
                "removed": summary["removed"], "cleaned_up": summary["cleaned_up"],
                "rows": MetadataValue.json(rows), "files": MetadataValue.json(result.files)}
    context.log_event(AssetMaterialization(asset_key="dr_drills", description=f"drill {result.drill_id}: {result.outcome}",
                                           metadata=metadata))
    context.add_output_metadata(metadata)
    if result.outcome != "passed":
        raise Failure(f"drill {result.drill_id}: {result.outcome}: {result.reason}", metadata=metadata)
    return summary


@job(name=DRILL_JOB, description="One disaster-recovery drill per run (config: the drill plan file or YAML).",
     tags={"qlrf/kind": "dr-drill"})
def dr_drill_job():
    run_dr_drill()


__all__ = ["DRILL_JOB", "DRILL_OP", "DrillConfig", "dr_drill_job", "drill_run_config"]
