"""Stage 2: the golden-image registry for a day, from the validated image-family contracts."""


from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AutomationCondition,
    Failure,
    MaterializeResult,
    asset,
)

from assets.common import as_of, partition_day, preview, rows_check, unique_check
from pipelines.partitions import daily
from qlrf.baseline import ContractError, load_contracts, registry_table
from resources.estate import EstateResource
from resources.warehouse import WarehouseResource


@asset(
    partitions_def=daily,
    group_name="baselines",
    kinds={"parquet"},
    description="Golden images across versions and channels: one row per family x version x platform x region.",
    check_specs=[
        AssetCheckSpec("has_rows", asset="golden_images", blocking=True),
        AssetCheckSpec("unique_keys", asset="golden_images", blocking=True),
    ],
    automation_condition=AutomationCondition.on_cron("0 0 * * *"),
)
def golden_images(context: AssetExecutionContext, estate: EstateResource, warehouse: WarehouseResource):
    day = partition_day(context)
    directory = estate.contracts_dir(day)
    try:
        families = load_contracts(directory)
    except ContractError as exc:
        # The previous day's registry stays in force: nothing is written for this partition.
        raise Failure(f"golden-image contracts rejected, previous baseline stays in force: {exc}") from exc
    table = registry_table(families, as_of(day))
    path = warehouse.get().write("golden_images", table, day)
    yield MaterializeResult(
        metadata={
            "dagster/row_count": table.num_rows,
            "families": len(families),
            "versions": len({(r["family"], r["version"]) for r in table.select(["family", "version"]).to_pylist()}),
            "contracts": str(directory),
            "path": path,
            "preview": preview(table.select(["family", "version", "channel", "revoked", "platform", "region", "image_ref"])),
        }
    )
    yield rows_check("golden_images", table)
    yield unique_check("golden_images", table, ["family", "version", "platform", "region"])
