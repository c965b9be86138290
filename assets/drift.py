"""Stage 3: drift per VM against the day's golden registry, and drift scores per site x environment."""


from dagster import AssetCheckSpec, AssetDep, AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.common import (
    as_of,
    partition_day_platform,
    preview,
    range_check,
    rows_check,
    same_rows_check,
    unique_check,
)
from pipelines.partitions import by_date, daily_platform
from qlrf import drift, sql
from resources.warehouse import WarehouseResource


@multi_asset(
    specs=[
        AssetSpec("vm_drift", deps=["inventory", AssetDep("golden_images", partition_mapping=by_date)], group_name="drift", kinds={"parquet"},
                  description="Per VM: current | behind | revoked | unknown | unmanaged, versions and days behind, severity."),
        AssetSpec("drift_scores", deps=["vm_drift"], group_name="drift", kinds={"parquet"},
                  description="0-100 drift score (0 = all current) per platform x site x environment."),
    ],
    check_specs=[
        AssetCheckSpec("one_row_per_vm", asset="vm_drift", blocking=True),
        AssetCheckSpec("unique_keys", asset="vm_drift", blocking=True),
        AssetCheckSpec("has_rows", asset="drift_scores", blocking=True),
        AssetCheckSpec("drift_score_in_range", asset="drift_scores", blocking=True),
        AssetCheckSpec("pct_current_in_range", asset="drift_scores", blocking=True),
    ],
    partitions_def=daily_platform,
)
def drift_assets(context: AssetExecutionContext, warehouse: WarehouseResource):
    day, platform = partition_day_platform(context)
    wh = warehouse.get()
    inventory = wh.read("inventory", day, platform)
    con = sql.connect()
    per_vm = drift.vm_drift(inventory, wh.read("golden_images", day), as_of(day), con)
    scores = drift.drift_scores(per_vm, con)
    counts = dict(zip(*[c.to_pylist() for c in per_vm.group_by("status").aggregate([([], "count_all")]).columns], strict=True))
    yield MaterializeResult(
        asset_key="vm_drift",
        metadata={"dagster/row_count": per_vm.num_rows, "path": wh.write("vm_drift", per_vm, day, platform), **{f"status/{k}": v for k, v in counts.items()}},
    )
    yield MaterializeResult(
        asset_key="drift_scores",
        metadata={"dagster/row_count": scores.num_rows, "path": wh.write("drift_scores", scores, day, platform), "preview": preview(scores)},
    )
    yield same_rows_check("vm_drift", per_vm, inventory)
    yield unique_check("vm_drift", per_vm, ["asset_id"])
    yield rows_check("drift_scores", scores)
    yield range_check("drift_scores", scores, "drift_score")
    yield range_check("drift_scores", scores, "pct_current")

