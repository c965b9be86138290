"""Stage 5: DR readiness per VM (restore point within RPO, rebuildable from golden) and per site."""

from dagster import AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.checks import check, partition_on_checks
from assets.common import as_of, outcome_checks, partition_day_platform, preview, range_check
from assets.partitions import daily_platform
from qlrf.scoring.stages import run_dr
from resources.warehouse import WarehouseResource


@multi_asset(
    specs=[
        AssetSpec("vm_dr", deps=["inventory", "vm_snapshots", "vm_drift"], group_name="resilience", kinds={"parquet"},
                  description="Per VM: newest restore point, RPO met, rebuildable from a golden image, ready, and the gap; "
                              "drill evidence (newest drill, decaying credit, measured RTO) and a 0-100 readiness score."),
        AssetSpec("dr_scores", deps=["vm_dr"], group_name="resilience", kinds={"parquet"},
                  description="Per platform x site x environment: share of VMs ready to recover (0-100) and the readiness "
                              "score with drill credit (capped at 50 where a drill failed)."),
    ],
    check_specs=[
        check("unique_keys", asset="vm_dr", blocking=True),
        check("dr_readiness_in_range", asset="dr_scores", blocking=True),
        check("readiness_score_in_range", asset="dr_scores", blocking=True),
        check("drill_credit_in_range", asset="dr_scores", blocking=True),
    ],
    partitions_def=daily_platform,
)
@partition_on_checks
def resilience_assets(context: AssetExecutionContext, warehouse: WarehouseResource):
    day, platform = partition_day_platform(context)
    out = run_dr(warehouse.get(), day, platform, as_of(day))
    yield MaterializeResult(
        asset_key="vm_dr",
        metadata={"dagster/row_count": out.rows, "path": out.path, **{f"gap/{k}": v for k, v in out.breakdown.items()}},
    )
    yield MaterializeResult(
        asset_key="dr_scores",
        metadata={"dagster/row_count": out.scores.num_rows, "path": out.scores_path, "preview": preview(out.scores)},
    )
    yield from outcome_checks("vm_dr", out)
    yield range_check("dr_scores", out.scores, "dr_readiness")
    yield range_check("dr_scores", out.scores, "readiness_score")
    yield range_check("dr_scores", out.scores, "drill_credit")
