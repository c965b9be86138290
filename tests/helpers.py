"""Shared test helpers: materialise a whole day of the graph into a temporary warehouse."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetSelection, DagsterInstance, MultiPartitionKey, materialize

from qlrf.inventory.contract import PLATFORMS


def all_assets():
    from pipelines.definitions import defs

    return list(defs.assets)


def resources_for(warehouse: Path, estate: Path) -> dict:
    from pipelines.definitions import resources
    from resources.estate import EstateResource
    from resources.warehouse import WarehouseResource

    return {**resources(), "warehouse": WarehouseResource(root=str(warehouse)), "estate": EstateResource(estate_dir=str(estate), seed=7)}


def materialize_day(warehouse: Path, estate: Path, day: str, platforms=PLATFORMS, instance: DagsterInstance | None = None):
    """golden images -> every platform partition -> fleet report, as the daily run does. Returns results."""
    assets = all_assets()
    res = resources_for(warehouse, estate)
    results = [materialize(assets, selection=AssetSelection.groups("baselines"), partition_key=day, resources=res, instance=instance, raise_on_error=False)]
    platform_sel = AssetSelection.groups("inventory", "drift", "compliance", "resilience")
    for p in platforms:
        key = MultiPartitionKey({"date": day, "platform": p})
        results.append(materialize(assets, selection=platform_sel, partition_key=key, resources=res, instance=instance, raise_on_error=False))
    results.append(materialize(assets, selection=AssetSelection.groups("report"), partition_key=day, resources=res, instance=instance, raise_on_error=False))
    return results
