"""Jobs: one per partitioning, so each run covers exactly one partition key."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

PLATFORM_ASSETS = AssetSelection.groups("inventory", "drift", "compliance", "resilience") | AssetSelection.assets(
    "vm_risk", "risk_scores", "vm_cost")  # the per-platform predictive assets (assets/predict.py)

golden_job = define_asset_job(
    "golden_images_job", selection=AssetSelection.groups("baselines"),
    description="Refresh the day's golden-image registry from the signed contracts.",
)
platform_job = define_asset_job(
    "platform_daily_job", selection=PLATFORM_ASSETS,
    description="Discover, then score drift, compliance and DR readiness for one day x platform.",
)
fleet_job = define_asset_job(
    "fleet_report_job", selection=AssetSelection.groups("report") | AssetSelection.assets(
        "risk_sites", "capacity_plan", "capacity_recommendations", "reclaim_candidates", "cost_summary", "drift_forecast"),
    description="Roll every platform of a day up into the fleet report.",
)
# The great-expectations suite costs an 8 s import, so it has its own job instead of slowing every run.
quality_job = define_asset_job(
    "inventory_quality_job", selection=AssetSelection.assets("inventory_quality"),
    description="Validate an inventory partition against the great-expectations suite.",
)
