"""Stage 4: compliance per VM x control from the catalogue in policy/controls.yaml, and site scores."""


import pyarrow.compute as pc
from dagster import AssetCheckSpec, AssetExecutionContext, AssetSpec, MaterializeResult, multi_asset

from assets.common import as_of, partition_day_platform, preview, range_check, rows_check, unique_check
from pipelines.partitions import daily_platform
from qlrf import compliance, sql
from resources.warehouse import WarehouseResource


@multi_asset(
    specs=[
        AssetSpec("vm_compliance", deps=["inventory", "vm_snapshots", "vm_drift"], group_name="compliance", kinds={"parquet"},
                  description="One row per VM x applicable control: passed or failed."),
        AssetSpec("compliance_scores", deps=["vm_compliance"], group_name="compliance", kinds={"parquet"},
                  description="Severity-weighted pass rate (0-100) per platform x site x environment."),
    ],
    check_specs=[
        AssetCheckSpec("has_rows", asset="vm_compliance", blocking=True),
        AssetCheckSpec("unique_keys", asset="vm_compliance", blocking=True, description="(asset_id, control_id) unique"),
        AssetCheckSpec("compliance_score_in_range", asset="compliance_scores", blocking=True),
    ],
    partitions_def=daily_platform,
)
def compliance_assets(context: AssetExecutionContext, warehouse: WarehouseResource):
    day, platform = partition_day_platform(context)
    wh = warehouse.get()
    catalogue = compliance.load_catalogue()
    con = sql.connect()
    compliance.prepare_facts(
        con, wh.read("inventory", day, platform), wh.read("vm_drift", day, platform), wh.read("vm_snapshots", day, platform), as_of(day)
    )
    results = compliance.vm_compliance(con, catalogue)
    scores = compliance.compliance_scores(results, con)
    failures = results.filter(pc.invert(results["passed"]))
    by_control = failures.group_by("control_id").aggregate([([], "count_all")]).to_pylist()
    yield MaterializeResult(
        asset_key="vm_compliance",
        metadata={
            "dagster/row_count": results.num_rows,
            "controls": len(catalogue.controls),
            "path": wh.write("vm_compliance", results, day, platform),
            **{f"failures/{r['control_id']}": r["count_all"] for r in by_control},
        },
    )
    yield MaterializeResult(
        asset_key="compliance_scores",
        metadata={"dagster/row_count": scores.num_rows, "path": wh.write("compliance_scores", scores, day, platform), "preview": preview(scores)},
    )
    yield rows_check("vm_compliance", results)
    yield unique_check("vm_compliance", results, ["asset_id", "control_id"])
    yield range_check("compliance_scores", scores, "compliance_score")
