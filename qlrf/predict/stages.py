"""The predictive stages, warehouse to warehouse: what the assets, the CLI and the benchmarks call.

Each reads the partitions scoring wrote, checks the new table before it replaces a partition
(qlrf.quality Gate: one row per VM, scores in 0-100), and returns the facts its asset reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from qlrf import sql
from qlrf.predict import risk
from qlrf.quality import Gate
from qlrf.scoring.stages import BASELINE_MAX_AGE_DAYS
from qlrf.warehouse import Warehouse


@dataclass
class PredictOutcome:
    path: str
    rows: int
    distinct_keys: int
    table: pa.Table
    table_path: str
    notes: dict[str, str] = field(default_factory=dict)


def vulnerabilities(wh: Warehouse, day: date, weights: risk.RiskWeights, advisories: list[risk.Advisory]) -> tuple[list[dict], str]:
    """(image_vulns, the image_packages day used): the newest SBOM index within the baseline window."""
    found = wh.latest_on_or_before("image_packages", day, BASELINE_MAX_AGE_DAYS)
    if found is None:
        return [], "none (vulnerable packages not scored)"
    con = sql.connect(1)  # DuckDB reads the small table without importing pyarrow.dataset (~2 s cold)
    sql.relation(con, "image_packages", wh.source("image_packages", found))
    cols = ("family", "version", "package", "package_version")
    packages = [dict(zip(cols, r, strict=True)) for r in sql.rows(con, f"SELECT {', '.join(cols)} FROM image_packages")]
    return risk.image_vulns(packages, advisories, weights), found


def run_risk(wh: Warehouse, day: date, platform: str, weights: risk.RiskWeights, advisories: list[risk.Advisory],
             controls: dict[str, list[str]], threads: int | None = None) -> PredictOutcome:
    """vm_risk (one row per non-terminated VM) and risk_scores (per site x environment) for a partition."""
    con = sql.connect(threads)
    vulns, sbom_day = vulnerabilities(wh, day, weights, advisories)
    risk.prepare(con, vm_drift=wh.source("vm_drift", day, platform), vm_compliance=wh.source("vm_compliance", day, platform),
                 vm_dr=wh.source("vm_dr", day, platform), inventory=wh.source("inventory", day, platform), vulns=vulns,
                 weights=weights)
    meta = Warehouse.file_metadata("vm_risk", day, platform, {"image_packages_date": sbom_day})
    writer = sql.copy_to_parquet(con, risk.VM_QUERY, meta, risk.params(weights, controls), zstd_level=1)
    path = wh.write_with("vm_risk", day, platform, writer,
                         gate=Gate(keys=("asset_id",), ranges={"risk_score": (0, 100)}))
    # The gate refused duplicate or null asset ids before the rename, so the file's row count is the key count.
    rows = wh.num_rows("vm_risk", day, platform)
    scores = risk.risk_scores(wh.source("vm_risk", day, platform), con)
    scores_path = wh.write("risk_scores", scores, day, platform, gate=Gate(ranges={"risk_score": (0, 100)}))
    levels = {level: sum(scores[f"{level}_vms"].to_pylist()) for level in ("critical", "high", "medium")}
    levels["low"] = rows - sum(levels.values())
    return PredictOutcome(path, rows, rows, scores, scores_path,
                          {"image_packages_date": sbom_day, "vulnerable_images": str(len(vulns)),
                           **{f"level/{k}": str(v) for k, v in levels.items()}})


def run_cost(wh: Warehouse, day: date, platform: str, prices, types, threads: int | None = None) -> PredictOutcome:
    """vm_cost for a partition: one row per non-terminated VM, unknown costs named, never zero."""
    from qlrf.predict import cost

    con = sql.connect(threads)
    cost.prepare(con, wh.source("inventory", day, platform), prices, types)
    meta = Warehouse.file_metadata("vm_cost", day, platform, {"estimate": prices.label()})
    path = wh.write_with("vm_cost", day, platform, sql.copy_to_parquet(con, cost.VM_QUERY, meta), gate=Gate(keys=("asset_id",)))
    sql.relation(con, "vm_cost", wh.source("vm_cost", day, platform))
    rows, distinct = sql.one(con, "SELECT count(*), count(DISTINCT asset_id) FROM vm_cost")
    summary = sql.table(con, cost.SUMMARY_QUERY)
    unknown = [t for (t,) in sql.rows(con, "SELECT DISTINCT unknown_type FROM vm_cost WHERE unknown_type IS NOT NULL ORDER BY 1")]
    (zero_or_silent,) = sql.one(con, "SELECT count(*) FROM vm_cost WHERE state = 'running' AND "
                                     "(monthly_usd <= 0 OR (monthly_usd IS NULL AND cost_basis NOT LIKE 'unknown:%'))")
    return PredictOutcome(path, rows, distinct, summary, path,
                          {"unknown_types": ", ".join(unknown) or "-", "zero_or_unlabelled": str(zero_or_silent),
                           "estimate": prices.label()})


def platforms_present(wh: Warehouse, table: str, day: date) -> list[str]:
    from qlrf.inventory.contract import PLATFORMS

    return [p for p in PLATFORMS if wh.exists(table, day, p)]


def run_risk_sites(wh: Warehouse, day: date) -> pa.Table:
    """Per site across every platform partition of the day (VM-weighted), ranked riskiest first."""
    present = platforms_present(wh, "risk_scores", day)
    table = risk.risk_sites(wh.read_platforms("risk_scores", day, present))
    wh.write("risk_sites", table, day, gate=Gate(keys=("site",), ranges={"risk_score": (0, 100)}))
    return table


def run_cost_summary(wh: Warehouse, day: date, prices, capacity_policy) -> tuple[pa.Table, dict[str, str]]:
    """cost_summary: per platform, site, environment, owner and all, plus reclaim savings (when the
    day's reclaim candidates exist)."""
    from qlrf.predict import cost

    present = platforms_present(wh, "vm_cost", day)
    table = cost.cost_summary(wh.read_platforms("vm_cost", day, present))
    notes = {"estimate": prices.label()}
    if wh.exists("reclaim_candidates", day):
        candidates = wh.read("reclaim_candidates", day)
        notes["reclaim_monthly_saving"] = f"{cost.reclaim_savings(candidates, prices):.2f}"
        notes["reclaim_candidates"] = str(candidates.num_rows)
    else:
        notes["reclaim_monthly_saving"] = "unknown (no reclaim_candidates partition for the day)"
    wh.write("cost_summary", table, day, metadata=notes, gate=Gate(keys=("dimension", "key")))
    return table, notes


def run_capacity(wh: Warehouse, day: date, policy, types) -> tuple[pa.Table, pa.Table, pa.Table]:
    """(capacity_plan, capacity_recommendations, reclaim_candidates), each written for the day."""
    from qlrf.predict import capacity

    con = sql.connect()
    window = max(policy.history_days, policy.reclaim_after_days + 1)
    capacity.prepare_history(con, wh, day, window, types)
    # The plan is fitted on history_days only; reclaim looks back reclaim_after_days.
    con_plan = sql.connect()
    capacity.prepare_history(con_plan, wh, day, policy.history_days, types)
    plan = capacity.capacity_plan(con_plan, policy)
    reclaim = capacity.reclaim_candidates(con, day, policy)
    recs = capacity.recommendations(plan, policy, day, capacity.failover_needs(wh, day))
    rec_table = pa.Table.from_pylist(recs, schema=RECOMMENDATION_SCHEMA)
    wh.write("capacity_plan", plan, day, gate=Gate(keys=("site", "region", "platform")))
    wh.write("capacity_recommendations", rec_table, day)
    wh.write("reclaim_candidates", reclaim, day, gate=Gate(keys=("asset_id",), min_rows=0))
    return plan, rec_table, reclaim


RECOMMENDATION_SCHEMA = pa.schema([
    ("kind", pa.string()), ("site", pa.string()), ("platform", pa.string()), ("resource", pa.string()),
    ("used", pa.float64()), ("capacity", pa.float64()), ("growth_per_week", pa.float64()), ("forecast", pa.float64()),
    ("exceeds_on", pa.date32()), ("state", pa.string()), ("note", pa.string()),
])

FORECAST_SCHEMA = pa.schema([
    ("platform", pa.string()), ("site", pa.string()), ("environment", pa.string()), ("days_of_history", pa.int32()),
    ("last_day", pa.date32()), ("vms", pa.int32()), ("drift_score", pa.float64()), ("method", pa.string()),
    ("forecast_7d", pa.float64()), ("lower_7d", pa.float64()), ("upper_7d", pa.float64()),
    ("forecast_30d", pa.float64()), ("lower_30d", pa.float64()), ("upper_30d", pa.float64()),
    ("threshold", pa.float64()), ("crosses_threshold_on", pa.date32()), ("crossing", pa.string()),
])


def run_forecast(wh: Warehouse, day: date, thresholds: dict[str, float]) -> pa.Table:
    """drift_forecast for the day: every site x environment x platform series with drift_scores."""
    from qlrf.inventory.contract import PLATFORMS
    from qlrf.predict import forecast

    rows = forecast.history(wh, day, PLATFORMS)
    if not rows:
        raise FileNotFoundError(f"no drift_scores partitions in the {forecast.WINDOW_DAYS} days up to {day}")
    table = pa.Table.from_pylist(forecast.drift_forecasts(rows, thresholds), schema=FORECAST_SCHEMA)
    ranges = {c: (0, 100) for c in ("forecast_7d", "forecast_30d")}
    wh.write("drift_forecast", table, day, gate=Gate(keys=("platform", "site", "environment"), ranges=ranges))
    return table
