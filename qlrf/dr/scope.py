"""Which protected VMs a drill restores: the plan's scope resolved against the normalised inventory.

The inventory (``inventory/date=D/platform=P``) is the one list of VMs every stage agrees on, so a
drill scoped by site, application tier (``group``), explicit ids or a selector names the same VMs
the readiness score and the failover simulation count. Terminated VMs are never in scope; an
explicit id that is not in the inventory, an empty scope and a scope above ``max_vms`` are refused
naming what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from qlrf.dr.drivers import DrillVm
from qlrf.dr.plans import DrillPlan, DrillPlanError
from qlrf.warehouse import PartitionMissing, Warehouse

INVENTORY = "inventory"


def inventory_rows(warehouse: Warehouse, platform: str, as_of: date) -> tuple[str, list[dict[str, Any]]]:
    """The newest inventory day of ``platform`` on or before ``as_of`` and its rows."""
    days = [d for d in warehouse.dates(INVENTORY) if d <= as_of.isoformat() and warehouse.exists(INVENTORY, d, platform)]
    if not days:
        raise PartitionMissing(f"inventory: no {platform} partition on or before {as_of}: run discovery first "
                               f"(`qlrf run` or `qlrf discover --platform {platform}`)")
    return days[-1], warehouse.read(INVENTORY, days[-1], platform).to_pylist()


def _value(row: Mapping[str, Any], key: str) -> Any:
    if key.startswith("tags."):
        tags = row.get("tags") or {}
        tags = dict(tags) if not isinstance(tags, dict) else tags
        return tags.get(key[5:])
    return row.get(key)


def _matches(row: Mapping[str, Any], plan: DrillPlan) -> bool:
    scope = plan.spec.scope
    if scope.site and row.get("site") != scope.site:
        return False
    if scope.group and row.get("group") != scope.group:
        return False
    if scope.vms and row.get("asset_id") not in scope.vms:
        return False
    for key, wanted in scope.selector.items():
        values = wanted if isinstance(wanted, list) else [wanted]
        if _value(row, key) not in values:
            return False
    return True


def resolve_scope(plan: DrillPlan, rows: Iterable[Mapping[str, Any]], source: str = "the inventory") -> list[DrillVm]:
    """The VMs of ``plan``'s scope among ``rows`` (inventory rows of the plan's platform), by asset id."""
    platform = plan.metadata.platform
    rows = [r for r in rows if r.get("platform", platform) == platform and r.get("state") != "terminated"]
    chosen = sorted((r for r in rows if _matches(r, plan)), key=lambda r: r["asset_id"])
    scope = plan.spec.scope
    missing = sorted(set(scope.vms) - {r["asset_id"] for r in rows})
    if missing:
        raise DrillPlanError(f"spec.scope.vms: {missing} not in {source} ({platform}, not terminated)")
    if not chosen:
        raise DrillPlanError(f"spec.scope selects no {platform} VM in {source}")
    if len(chosen) > scope.max_vms:
        raise DrillPlanError(f"spec.scope selects {len(chosen)} VMs, above spec.scope.max_vms {scope.max_vms}: narrow it")
    return [DrillVm(asset_id=r["asset_id"], platform=platform, account=r.get("account") or "", region=r.get("region") or "",
                    name=r.get("name") or r["asset_id"], zone=r.get("zone"), instance_type=r.get("instance_type"),
                    site=r.get("site"), environment=r.get("environment"), group=r.get("group"), image_ref=r.get("image_ref"))
            for r in chosen]


__all__ = ["INVENTORY", "inventory_rows", "resolve_scope"]
