"""Stage 3: drift per VM against the day's golden registry, and drift scores per site x environment."""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    Failure,
    MaterializeResult,
    multi_asset,
)

from assets.checks import check, partition_on_checks
from assets.common import as_of, outcome_checks, partition_day_platform, preview, range_check, rows_check
from assets.partitions import by_date, daily_platform
from qlrf.scoring.stages import BaselineMissing, run_drift
from resources.warehouse import WarehouseResource


@multi_asset(
    specs=[
        AssetSpec("vm_drift", deps=["inventory", AssetDep("golden_images", partition_mapping=by_date)], group_name="drift", kinds={"parquet"},
                  description="Per VM: current | behind | revoked | unknown | unmanaged, versions and days behind, severity."),
        AssetSpec("drift_scores", deps=["vm_drift"], group_name="drift", kinds={"parquet"},
                  description="0-100 drift score (0 = all current) per platform x site x environment."),
    ],
    check_specs=[
        check("one_row_per_vm", asset="vm_drift", blocking=True),
        check("unique_keys", asset="vm_drift", blocking=True),
        check("has_rows", asset="drift_scores", blocking=True),
        check("drift_score_in_range", asset="drift_scores", blocking=True),
        check("pct_current_in_range", asset="drift_scores", blocking=True),
    ],
    partitions_def=daily_platform,
)
@partition_on_checks
def drift_assets(context: AssetExecutionContext, warehouse: WarehouseResource):
    day, platform = partition_day_platform(context)
    try:
        out = run_drift(warehouse.get(), day, platform, as_of(day))
    except BaselineMissing as exc:
        raise Failure(str(exc)) from exc
    if out.notes["baseline_date"] != day.isoformat():
        context.log.warning(f"golden_images for {day} missing or rejected: drift measured against the baseline of {out.notes['baseline_date']}")
    yield MaterializeResult(
        asset_key="vm_drift",
        metadata={"dagster/row_count": out.rows, "path": out.path, **out.notes, **{f"status/{k}": v for k, v in out.breakdown.items()}},
    )
    yield MaterializeResult(
        asset_key="drift_scores",
        metadata={"dagster/row_count": out.scores.num_rows, "path": out.scores_path, "preview": preview(out.scores)},
    )
    yield from outcome_checks("vm_drift", out, one_row_per_vm=True)
    yield rows_check("drift_scores", out.scores)
    yield range_check("drift_scores", out.scores, "drift_score")
    yield range_check("drift_scores", out.scores, "pct_current")
