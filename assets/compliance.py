"""Stage 4: compliance per VM from the catalogue in policy/controls.yaml (with waivers), and site scores."""

from dagster import AssetExecutionContext, AssetSpec, Failure, MaterializeResult, multi_asset

from assets.checks import check, partition_on_checks
from assets.common import as_of, outcome_checks, partition_day_platform, preview, range_check, rows_check
from assets.partitions import daily_platform
from qlrf.scoring import compliance
from qlrf.scoring.stages import run_compliance
from resources.warehouse import WarehouseResource


@multi_asset(
    specs=[
        AssetSpec("vm_compliance", deps=["inventory", "vm_snapshots", "vm_drift"], group_name="compliance", kinds={"parquet"},
                  description="One row per VM: failed controls, waived controls, severity weights applicable and passed."),
        AssetSpec("compliance_scores", deps=["vm_compliance"], group_name="compliance", kinds={"parquet"},
                  description="Severity-weighted pass rate (0-100) per platform x site x environment."),
    ],
    check_specs=[
        check("has_rows", asset="vm_compliance", blocking=True),
        check("unique_keys", asset="vm_compliance", blocking=True),
        check("compliance_score_in_range", asset="compliance_scores", blocking=True),
    ],
    partitions_def=daily_platform,
)
@partition_on_checks
def compliance_assets(context: AssetExecutionContext, warehouse: WarehouseResource):
    day, platform = partition_day_platform(context)
    try:
        catalogue = compliance.load_catalogue()
        out = run_compliance(warehouse.get(), day, platform, as_of(day), catalogue, compliance.load_waivers(catalogue=catalogue))
    except ValueError as exc:
        raise Failure(str(exc)) from exc
    yield MaterializeResult(
        asset_key="vm_compliance",
        metadata={"dagster/row_count": out.rows, "controls": len(catalogue.controls), "path": out.path, **out.notes,
                  **{f"failures/{k}": v for k, v in out.breakdown.items()}},
    )
    yield MaterializeResult(
        asset_key="compliance_scores",
        metadata={"dagster/row_count": out.scores.num_rows, "path": out.scores_path, "preview": preview(out.scores)},
    )
    yield rows_check("vm_compliance", out.rows)
    yield from outcome_checks("vm_compliance", out)
    yield range_check("compliance_scores", out.scores, "compliance_score")
