"""Drift trends across daily partitions and a week-ahead forecast per site x environment."""

import pyarrow.compute as pc
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    asset,
)

from assets.checks import check, partition_on_checks
from assets.common import partition_day, preview, range_check
from assets.partitions import by_date, daily, trailing_days
from qlrf.scoring.trends import WINDOW_DAYS
from qlrf.scoring.trends import drift_trends as compute_trends
from resources.warehouse import WarehouseResource


@asset(
    partitions_def=daily,
    # Reads every platform's drift_scores of the last WINDOW_DAYS days. The window is declared on their
    # daily roll-up (fleet_report), the only side Dagster can map a time window from (assets/partitions.py).
    deps=[AssetDep("drift_scores", partition_mapping=by_date),
          AssetDep("fleet_report", partition_mapping=trailing_days(WINDOW_DAYS))],
    group_name="report",
    kinds={"parquet"},
    description=f"Per site x environment: today's drift score, change per week and a forecast a week ahead "
    f"(least squares over up to {WINDOW_DAYS} daily partitions; method named in each row).",
    check_specs=[check("forecast_next_week_in_range", asset="drift_trends", blocking=True)],
    automation_condition=AutomationCondition.on_cron("0 6 * * *"),
)
@partition_on_checks
def drift_trends(context: AssetExecutionContext, warehouse: WarehouseResource):
    day = partition_day(context)
    wh = warehouse.get()
    table = compute_trends(wh, day)
    worsening = table.filter(pc.equal(table["trend"], "worsening")).num_rows
    yield MaterializeResult(
        metadata={"dagster/row_count": table.num_rows, "worsening": worsening, "path": wh.write("drift_trends", table, day),
                  "preview": preview(table)}
    )
    yield range_check("drift_trends", table, "forecast_next_week")

