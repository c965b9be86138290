"""Stage 7: predictive features (qlrf/predict/): risk per VM and site, cost estimates, capacity
planning and drift forecasts with prediction intervals.

A malformed policy file (risk weights, CVE list, price table, capacity) fails the asset with the file
and line before anything is written, so the previous partition stays in force.
"""

from dagster import (
    AssetCheckResult,
    AssetDep,
    AssetExecutionContext,
    AssetSpec,
    AutomationCondition,
    Failure,
    MaterializeResult,
    multi_asset,
)

from assets.checks import check, partition_on_checks
from assets.common import (
    outcome_checks,
    partition_day,
    partition_day_platform,
    preview,
    range_check,
    rows_check,
    unique_check,
)
from assets.partitions import by_date, daily, daily_platform
from qlrf.predict.policyfile import PolicyFileError
from resources.warehouse import WarehouseResource

GROUP = "predict"
_DAILY = AutomationCondition.on_cron("0 6 * * *")


def _fail(exc: Exception) -> Failure:
    return Failure(f"nothing written, the previous partition stays: {exc}")


@multi_asset(
    specs=[
        AssetSpec("vm_risk", deps=["vm_drift", "vm_compliance", "vm_dr", "inventory",
                                   AssetDep("image_packages", partition_mapping=by_date)],
                  group_name=GROUP, kinds={"parquet"},
                  description="Per VM: additive risk score 0-100 (policy/risk_weights.yaml), each factor's points, "
                              "the level and the top three factors."),
        AssetSpec("risk_scores", deps=["vm_risk"], group_name=GROUP, kinds={"parquet"},
                  description="Mean and max risk, critical/high VMs and top factors per platform x site x environment."),
        AssetSpec("vm_cost", deps=["inventory"], group_name=GROUP, kinds={"parquet"},
                  description="ESTIMATED monthly USD per VM from policy/prices.yaml (unknown, named, when a type "
                              "has no price; never zero) with right-sizing hints."),
    ],
    check_specs=[
        check("unique_keys", asset="vm_risk", blocking=True),
        check("risk_score_in_range", asset="risk_scores", blocking=True),
        check("unique_keys", asset="vm_cost", blocking=True),
        check("unknown_costs_named", asset="vm_cost", blocking=True),
    ],
    partitions_def=daily_platform,
)
@partition_on_checks
def predict_platform_assets(context: AssetExecutionContext, warehouse: WarehouseResource):
    from qlrf.inventory.instance_types import InstanceTypesError, default_instance_types
    from qlrf.predict import cost, risk
    from qlrf.predict.stages import run_cost, run_risk
    from qlrf.scoring.compliance import load_catalogue

    day, platform = partition_day_platform(context)
    wh = warehouse.get()
    try:  # every policy file first: a bad one fails before anything is written
        weights, advisories = risk.load_weights(), risk.load_cves()
        controls = risk.control_severities(load_catalogue())
        prices, types = cost.load_price_table(), default_instance_types()
    except (PolicyFileError, InstanceTypesError, ValueError) as exc:
        raise _fail(exc) from exc
    out = run_risk(wh, day, platform, weights, advisories, controls)
    spend = run_cost(wh, day, platform, prices, types)
    yield MaterializeResult(asset_key="vm_risk", metadata={"dagster/row_count": out.rows, "path": out.path, **out.notes})
    yield MaterializeResult(asset_key="risk_scores", metadata={"dagster/row_count": out.table.num_rows,
                                                               "path": out.table_path, "preview": preview(out.table)})
    yield MaterializeResult(asset_key="vm_cost", metadata={"dagster/row_count": spend.rows, "path": spend.path,
                                                           **spend.notes, "summary": preview(spend.table)})
    yield from outcome_checks("vm_risk", out)
    yield range_check("risk_scores", out.table, "risk_score")
    yield from outcome_checks("vm_cost", spend)
    yield AssetCheckResult(asset_key="vm_cost", check_name="unknown_costs_named",
                           passed=spend.notes["zero_or_unlabelled"] == "0",
                           metadata={"unknown_types": spend.notes["unknown_types"],
                                     "zero_or_unlabelled": spend.notes["zero_or_unlabelled"]})


_BY_DATE = [AssetDep(k, partition_mapping=by_date) for k in ("risk_scores", "vm_cost", "inventory", "drift_scores")]


@multi_asset(
    specs=[
        AssetSpec("risk_sites", deps=[_BY_DATE[0]], group_name=GROUP, kinds={"parquet"}, automation_condition=_DAILY,
                  description="Per site across platforms: VM-weighted risk, critical/high VMs, top factors."),
        AssetSpec("capacity_plan", deps=[_BY_DATE[2]], group_name=GROUP, kinds={"parquet"}, automation_condition=_DAILY,
                  description="vCPU and memory per site x region x platform, weekly growth and a forecast."),
        AssetSpec("capacity_recommendations", deps=["capacity_plan", AssetDep("vm_dr", partition_mapping=by_date)], group_name=GROUP, kinds={"parquet"},
                  automation_condition=_DAILY,
                  description="Where a site will exceed its configured capacity (policy/capacity.yaml), and when."),
        AssetSpec("reclaim_candidates", deps=[_BY_DATE[2]], group_name=GROUP, kinds={"parquet"}, automation_condition=_DAILY,
                  description="VMs stopped in every inventory partition for reclaim_after_days (policy/capacity.yaml)."),
        AssetSpec("cost_summary", deps=[_BY_DATE[1], "reclaim_candidates"], group_name=GROUP, kinds={"parquet"},
                  automation_condition=_DAILY,
                  description="ESTIMATED monthly USD per platform, site, environment, owner and all; unknown costs "
                              "counted and named; right-sizing and reclaim savings."),
        AssetSpec("drift_forecast", deps=[_BY_DATE[3]], group_name=GROUP, kinds={"parquet"}, automation_condition=_DAILY,
                  description="Drift score 7 and 30 days ahead with 80% intervals per site x environment x platform "
                              "(statsmodels ETS; line fit on short history) and the threshold crossing date."),
    ],
    check_specs=[
        check("risk_score_in_range", asset="risk_sites", blocking=True),
        check("has_rows", asset="capacity_plan"),
        check("has_rows", asset="cost_summary"),
        check("has_rows", asset="capacity_recommendations"),
        check("unique_keys", asset="reclaim_candidates"),
        check("forecast_30d_in_range", asset="drift_forecast", blocking=True),
    ],
    partitions_def=daily,
    can_subset=False,
)
@partition_on_checks
def predict_fleet_assets(context: AssetExecutionContext, warehouse: WarehouseResource):
    from qlrf.inventory.instance_types import InstanceTypesError, default_instance_types
    from qlrf.predict import capacity, cost
    from qlrf.predict.stages import run_capacity, run_cost_summary, run_forecast, run_risk_sites
    from qlrf.remediation.policy import RemediationPolicy

    day = partition_day(context)
    wh = warehouse.get()
    try:
        prices, types, policy = cost.load_price_table(), default_instance_types(), capacity.load_capacity()
        thresholds = RemediationPolicy.load().thresholds()
    except (PolicyFileError, InstanceTypesError, ValueError) as exc:
        raise _fail(exc) from exc
    sites = run_risk_sites(wh, day)
    plan, recs, reclaim = run_capacity(wh, day, policy, types)
    summary, notes = run_cost_summary(wh, day, prices, policy)
    forecasts = run_forecast(wh, day, thresholds)
    exceeding = [r for r in recs.to_pylist() if r["kind"] == "site_capacity" and r["state"] != "within capacity"]
    crossing = sum(1 for c in forecasts["crossing"].to_pylist() if c.startswith("within"))
    yield MaterializeResult(asset_key="risk_sites", metadata={"dagster/row_count": sites.num_rows, "preview": preview(sites)})
    yield MaterializeResult(asset_key="capacity_plan", metadata={"dagster/row_count": plan.num_rows, "preview": preview(plan)})
    yield MaterializeResult(asset_key="capacity_recommendations",
                            metadata={"dagster/row_count": recs.num_rows, "exceeding": len(exceeding), "preview": preview(recs)})
    yield MaterializeResult(asset_key="reclaim_candidates", metadata={"dagster/row_count": reclaim.num_rows})
    yield MaterializeResult(asset_key="cost_summary", metadata={"dagster/row_count": summary.num_rows, **notes,
                                                                "preview": preview(summary)})
    yield MaterializeResult(asset_key="drift_forecast", metadata={"dagster/row_count": forecasts.num_rows,
                                                                  "crossing_within_horizon": crossing,
                                                                  "preview": preview(forecasts)})
    yield range_check("risk_sites", sites, "risk_score")
    yield rows_check("capacity_plan", plan)
    yield rows_check("cost_summary", summary)
    yield rows_check("capacity_recommendations", recs)
    yield unique_check("reclaim_candidates", reclaim, ["asset_id"])
    yield range_check("drift_forecast", forecasts, "forecast_30d")
