"""Stage 5: DR readiness per VM (restore point within RPO, rebuildable from golden) and per site."""


from dagster import AssetCheckSpec, AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.common import as_of, partition_day_platform, preview, range_check, unique_check
from pipelines.partitions import daily_platform
from qlrf import compliance, dr, sql
from resources.warehouse import WarehouseResource


@multi_asset(
    specs=[
        AssetSpec("vm_dr", deps=["inventory", "vm_snapshots", "vm_drift"], group_name="resilience", kinds={"parquet"},
                  description="Per VM: newest restore point, RPO met, rebuildable from a golden image, ready."),
        AssetSpec("dr_scores", deps=["vm_dr"], group_name="resilience", kinds={"parquet"},
                  description="Share of VMs ready to recover (0-100) per platform x site x environment."),
    ],
    check_specs=[
        AssetCheckSpec("unique_keys", asset="vm_dr", blocking=True),
        AssetCheckSpec("dr_readiness_in_range", asset="dr_scores", blocking=True),
    ],
    partitions_def=daily_platform,
)
def resilience_assets(context: AssetExecutionContext, warehouse: WarehouseResource):
    day, platform = partition_day_platform(context)
    wh = warehouse.get()
    con = sql.connect()
    compliance.prepare_facts(
        con, wh.read("inventory", day, platform), wh.read("vm_drift", day, platform), wh.read("vm_snapshots", day, platform), as_of(day)
    )
    per_vm = dr.vm_dr(con)
    scores = dr.dr_scores(per_vm, con)
    yield MaterializeResult(
        asset_key="vm_dr",
        metadata={"dagster/row_count": per_vm.num_rows, "path": wh.write("vm_dr", per_vm, day, platform)},
    )
    yield MaterializeResult(
        asset_key="dr_scores",
        metadata={"dagster/row_count": scores.num_rows, "path": wh.write("dr_scores", scores, day, platform), "preview": preview(scores)},
    )
    yield unique_check("vm_dr", per_vm, ["asset_id"])
    yield range_check("dr_scores", scores, "dr_readiness")
