"""Stage 1: normalised inventory and snapshot facts per day x platform."""


import pyarrow.compute as pc
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetSpec,
    Failure,
    MaterializeResult,
    multi_asset,
)

from assets.checks import check, partition_on_checks
from assets.common import partition_day_platform, preview, rows_check, schema_check, unique_check
from assets.discovery import DISCOVERED
from assets.partitions import daily_platform
from qlrf.inventory.columnar import Discovered
from qlrf.inventory.contract import INVENTORY_SCHEMA, SNAPSHOT_SCHEMA, facts_table
from qlrf.platforms import REGISTRY
from qlrf.quality import Gate, PartitionRejected, max_shrink_from_env
from resources.warehouse import WarehouseResource

INVENTORY, SNAPSHOTS = "inventory", "vm_snapshots"

# Discovery facts key -> warehouse table, over every registered platform (qlrf/platforms.py).
FACT_TABLES = REGISTRY.fact_tables()
FACT_TABLE_NAMES = tuple(dict.fromkeys(FACT_TABLES.values()))
FACT_DESCRIPTIONS = {
    "cloud_images": "Images and templates the live connectors saw (AMIs, gallery versions, GCE images, vSphere templates).",
    "scaling_groups": "ASGs, VM scale sets and MIGs with membership and the image each would launch now.",
}


def _fact_spec(table: str) -> AssetSpec:
    description = FACT_DESCRIPTIONS.get(table, f"Discovery facts ({table}) from the live connectors.")
    return AssetSpec(table, description=description, kinds={"parquet"}, group_name="inventory", deps=[DISCOVERED])


def _facts(found: Discovered, table: str) -> list[dict]:
    return [row for key, name in FACT_TABLES.items() if name == table for row in found.facts.get(key, [])]


@multi_asset(
    specs=[
        AssetSpec(INVENTORY, description="One row per VM in the normalised inventory contract.", kinds={"parquet"}, group_name="inventory", owners=["team:platform"], deps=[DISCOVERED]),
        AssetSpec(SNAPSHOTS, description="Restore points (snapshots) per VM, for DR readiness.", kinds={"parquet"}, group_name="inventory", deps=[DISCOVERED]),
        *(_fact_spec(table) for table in FACT_TABLE_NAMES),
    ],
    check_specs=[
        check("has_rows", asset=INVENTORY, blocking=True),
        check("matches_contract", asset=INVENTORY, blocking=True),
        check("unique_keys", asset=INVENTORY, blocking=True, description="asset_id is unique"),
        check("no_rejected_records", asset=INVENTORY, description="every raw record normalised"),
        check("all_scopes_discovered", asset=INVENTORY, description="no region/account/project failed"),
        check("every_vm_has_org", asset=INVENTORY, description="every VM's scope is mapped in the tenancy file (warns, listing unmapped scopes)"),
        check("known_vms", asset=SNAPSHOTS, description="every snapshot belongs to an inventoried VM"),
        *(check("has_platform_column", asset=table) for table in FACT_TABLE_NAMES),
    ],
    partitions_def=daily_platform,
)
@partition_on_checks
def inventory_assets(
    context: AssetExecutionContext,
    discovered_inventory: Discovered,
    warehouse: WarehouseResource,
):
    # Discovery ran as a fan-out over scopes (assets/discovery.py); this writes its merged result once.
    day, platform = partition_day_platform(context)
    found = discovered_inventory
    for err in found.errors[:20]:
        context.log.warning(f"rejected: {err}")
    if not found.vms.num_rows:
        # Never replace an earlier partition with an empty one.
        reasons = "; ".join(str(e) for e in found.errors[:5]) or "; ".join(f"{f['scope']}: {f['reason']}" for f in found.failed_scopes[:5])
        raise Failure(f"{platform} {day}: no VMs discovered, nothing written. {reasons}".strip())
    wh = warehouse.get()
    # Typed by the contract and stamped with org/project (contract 1.1) where each batch was discovered.
    unmapped, inv, snaps = found.unmapped, found.vms, found.snapshots
    run_meta = {
        "rejected_records": len(found.errors),
        "failed_scopes": found.failed_scopes,
        "complete": not found.errors and not found.failed_scopes,
    }
    # Checked before it replaces anything: unique ids, the contract's schema, not much smaller than the
    # partition before it (a truncated export or a lost region is refused, the previous one stays).
    gate = Gate(keys=("asset_id",), schema=INVENTORY_SCHEMA, max_shrink=max_shrink_from_env())
    try:
        inv_path = wh.write(INVENTORY, inv, day, platform, metadata=run_meta, gate=gate)
    except PartitionRejected as exc:
        raise Failure(str(exc)) from exc
    snap_path = wh.write(SNAPSHOTS, snaps, day, platform, metadata=run_meta)
    yield MaterializeResult(
        asset_key=INVENTORY,
        metadata={
            "dagster/row_count": inv.num_rows,
            "path": inv_path,
            "rejected_records": len(found.errors),
            "failed_scopes": [f"{f['scope']}: {f['reason']}" for f in found.failed_scopes],
            "complete": run_meta["complete"],
            "preview": preview(inv.select(["asset_id", "account", "region", "name", "state", "image_ref", "site", "environment"])),
        },
    )
    yield MaterializeResult(asset_key=SNAPSHOTS, metadata={"dagster/row_count": snaps.num_rows, "path": snap_path})
    for asset_key in FACT_TABLE_NAMES:
        facts = facts_table(_facts(found, asset_key))
        path = wh.write(asset_key, facts, day, platform, metadata=run_meta)
        yield MaterializeResult(asset_key=asset_key, metadata={"dagster/row_count": facts.num_rows, "path": path})
        yield AssetCheckResult(asset_key=asset_key, check_name="has_platform_column", passed="platform" in facts.schema.names)
    yield rows_check(INVENTORY, inv)
    yield schema_check(INVENTORY, inv, INVENTORY_SCHEMA)
    yield unique_check(INVENTORY, inv, ["asset_id"])
    yield AssetCheckResult(
        asset_key=INVENTORY,
        check_name="no_rejected_records",
        passed=not found.errors,
        severity=AssetCheckSeverity.WARN,
        metadata={"rejected": len(found.errors), "first": str(found.errors[0]) if found.errors else "-"},
    )
    yield AssetCheckResult(
        asset_key=INVENTORY,
        check_name="all_scopes_discovered",
        passed=not found.failed_scopes,
        metadata={"failed": "; ".join(f"{f['scope']}: {f['reason']}" for f in found.failed_scopes) or "-"},
    )
    yield AssetCheckResult(
        asset_key=INVENTORY, check_name="every_vm_has_org", passed=not unmapped, severity=AssetCheckSeverity.WARN,
        metadata={"unmapped_scopes": [f"{p}:{s}" for p, s in unmapped] or "-"},
    )
    orphans = snaps.num_rows - pc.sum(pc.is_in(snaps["asset_id"], value_set=inv["asset_id"])).as_py() if snaps.num_rows else 0
    yield AssetCheckResult(asset_key=SNAPSHOTS, check_name="known_vms", passed=orphans == 0, metadata={"orphans": orphans, "schema": str(SNAPSHOT_SCHEMA.names)})
