"""Stage 6: the daily fleet report across every platform partition of the day."""


from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    AutomationCondition,
    MaterializeResult,
    multi_asset,
)

from assets.checks import check, partition_on_checks
from assets.common import partition_day, preview, range_check, rows_check
from assets.partitions import by_date, daily
from qlrf.inventory.contract import PLATFORMS
from qlrf.scoring.report import fleet_tables, fleet_tables_present
from resources.warehouse import WarehouseResource

_UPSTREAM = [AssetDep(key, partition_mapping=by_date) for key in ("vm_drift", "vm_compliance", "vm_dr")]


@multi_asset(
    specs=[
        AssetSpec("fleet_report", deps=_UPSTREAM, group_name="report", kinds={"parquet"},
                  description="Per platform and fleet-wide: VMs, % on current golden, drift, compliance, DR readiness.",
                  # Once a day after the platform partitions have all been refreshed.
                  automation_condition=AutomationCondition.on_cron("0 6 * * *")),
        AssetSpec("fleet_sites", deps=_UPSTREAM, group_name="report", kinds={"parquet"},
                  description="Sites ranked by drift score, most drifted first.",
                  automation_condition=AutomationCondition.on_cron("0 6 * * *")),
    ],
    check_specs=[
        check("all_platforms_present", asset="fleet_report"),
        check("compliance_score_in_range", asset="fleet_report", blocking=True),
        check("has_rows", asset="fleet_sites"),
    ],
    partitions_def=daily,
)
@partition_on_checks
def fleet_report_assets(context: AssetExecutionContext, warehouse: WarehouseResource):
    day = partition_day(context)
    wh = warehouse.get()
    present = fleet_tables_present(wh, day)
    summary, sites = fleet_tables(wh, day, tuple(present))
    yield MaterializeResult(
        asset_key="fleet_report",
        metadata={"dagster/row_count": summary.num_rows, "path": wh.write("fleet_report", summary, day), "report": preview(summary)},
    )
    yield MaterializeResult(
        asset_key="fleet_sites",
        metadata={"dagster/row_count": sites.num_rows, "path": wh.write("fleet_sites", sites, day), "top_drifted": preview(sites, 5)},
    )
    missing = [p for p in PLATFORMS if p not in present]
    yield AssetCheckResult(
        asset_key="fleet_report",
        check_name="all_platforms_present",
        passed=not missing,
        severity=AssetCheckSeverity.WARN,
        metadata={"missing": ", ".join(missing) or "-"},
    )
    yield range_check("fleet_report", summary, "compliance_score")
    yield rows_check("fleet_sites", sites)
