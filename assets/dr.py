"""DR roll-ups for the day: the configured failover scenarios' verdicts and the readiness trends.

Both read the platform partitions of vm_dr / dr_scores for the day (plus the drill journal and the
DR target map), so they sit with the daily report assets and run in the same job.
"""

import json

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    asset,
)

from assets.checks import check, partition_on_checks
from assets.common import partition_day, preview, range_check
from assets.partitions import by_date, daily
from qlrf.dr.scenarios import evaluate_scenarios
from qlrf.scoring.dr_trends import dr_trends as compute_dr_trends
from resources.warehouse import WarehouseResource


@asset(
    partitions_def=daily,
    deps=[AssetDep("vm_dr", partition_mapping=by_date)],
    group_name="report",
    kinds={"parquet"},
    description="Each failover scenario configured in the DR target map (policy/dr_targets.yaml): VMs and groups "
    "affected, capacity at the targets, RTO measured or not, RPO exposure and the verdict (qlrf dr simulate).",
    check_specs=[check("every_scenario_evaluated", asset="dr_failover_scenarios", blocking=True)],
    automation_condition=AutomationCondition.on_cron("0 6 * * *"),
)
@partition_on_checks
def dr_failover_scenarios(context: AssetExecutionContext, warehouse: WarehouseResource):
    day = partition_day(context)
    wh = warehouse.get()
    table, configured = evaluate_scenarios(wh, day)
    path = wh.write("dr_failover_scenarios", table, day)
    breached = [r["scenario"] for r in table.select(["scenario", "verdict"]).to_pylist() if r["verdict"] == "breached"]
    yield MaterializeResult(metadata={"dagster/row_count": table.num_rows, "path": path, "breached": ", ".join(breached) or "-",
                                      "preview": preview(table.drop_columns(["detail"]))})
    evaluated = set(table.column("scenario").to_pylist())
    missing = [s for s in configured if s not in evaluated]
    yield AssetCheckResult(asset_key="dr_failover_scenarios", check_name="every_scenario_evaluated", passed=not missing,
                           metadata={"configured": len(configured), "missing": json.dumps(missing)})


@asset(
    partitions_def=daily,
    deps=[AssetDep("dr_scores", partition_mapping=by_date)],
    group_name="report",
    kinds={"parquet"},
    description="Per platform x site x environment: today's DR readiness score (drill credit and caps included) and its "
    "change per week (least squares over up to 28 daily partitions; method named in each row).",
    check_specs=[check("readiness_score_in_range", asset="dr_trends", blocking=True)],
    automation_condition=AutomationCondition.on_cron("0 6 * * *"),
)
@partition_on_checks
def dr_trends(context: AssetExecutionContext, warehouse: WarehouseResource):
    day = partition_day(context)
    wh = warehouse.get()
    table: pa.Table = compute_dr_trends(wh, day)
    worsening = sum(1 for t in table.column("trend").to_pylist() if t == "worsening")
    yield MaterializeResult(metadata={"dagster/row_count": table.num_rows, "worsening": worsening,
                                      "path": wh.write("dr_trends", table, day), "preview": preview(table)})
    yield range_check("dr_trends", table, "readiness_score")
