"""Data quality with great-expectations, as its own asset so only its job pays GX's 8 s import."""

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.checks import check, partition_on_checks
from assets.common import partition_day_platform
from assets.partitions import daily_platform
from qlrf.inventory.expectations import validate_inventory
from resources.warehouse import WarehouseResource


@asset(
    deps=["inventory"],
    partitions_def=daily_platform,
    group_name="quality",
    kinds={"parquet", "great_expectations"},
    description="The great-expectations validation of an inventory partition: required fields, unique ids, "
    "known states, tag coverage. One row per failed expectation.",
    check_specs=[check("expectations_pass", asset="inventory_quality")],
)
@partition_on_checks
def inventory_quality(context: AssetExecutionContext, warehouse: WarehouseResource):
    day, platform = partition_day_platform(context)
    wh = warehouse.get()
    table = wh.read("inventory", day, platform)
    outcome = validate_inventory(table)
    failed = pa.Table.from_pylist(
        outcome["failed"],
        schema=pa.schema([("expectation", pa.string()), ("column", pa.string()), ("unexpected_percent", pa.float64())]),
    )
    path = wh.write("inventory_quality", failed, day, platform, metadata={"evaluated": outcome["evaluated"]})
    yield MaterializeResult(metadata={"path": path, "rows_validated": table.num_rows, "expectations": outcome["evaluated"]})
    yield AssetCheckResult(
        check_name="expectations_pass",
        passed=outcome["success"],
        metadata={"expectations": outcome["evaluated"], "failed": MetadataValue.json(outcome["failed"])},
    )
