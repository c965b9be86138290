"""Jobs: one per partitioning, so each run covers exactly one partition key."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from pipelines.partitions import daily, daily_platform

PLATFORM_ASSETS = AssetSelection.assets(
    "inventory", "vm_snapshots", "vm_drift", "drift_scores", "vm_compliance", "compliance_scores", "vm_dr", "dr_scores"
)

golden_job = define_asset_job(
    "golden_images_job", selection=AssetSelection.assets("golden_images"), partitions_def=daily,
    description="Refresh the day's golden-image registry from the signed contracts.",
)
platform_job = define_asset_job(
    "platform_daily_job", selection=PLATFORM_ASSETS, partitions_def=daily_platform,
    description="Discover, then score drift, compliance and DR readiness for one day x platform.",
)
fleet_job = define_asset_job(
    "fleet_report_job", selection=AssetSelection.assets("fleet_report", "fleet_sites"), partitions_def=daily,
    description="Roll every platform of a day up into the fleet report.",
)
