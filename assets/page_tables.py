"""Page tables: the Control Tower's distributions counted once per day x platform from the per-VM tables.

One asset per table, in its per-VM table's group (so the platform job and every day's run make it);
the counting lives in qlrf.scoring.page_tables.
"""

import pyarrow.compute as pc
from dagster import AssetCheckResult, AssetExecutionContext, Failure, MaterializeResult, asset

from assets.checks import check, partition_on_checks
from assets.common import partition_day_platform, preview
from assets.partitions import daily_platform
from qlrf.quality import PartitionRejected
from qlrf.scoring.page_tables import BY_NAME, run_page_table
from resources.warehouse import WarehouseResource

GROUPS = {"vm_drift": "drift", "vm_compliance": "compliance", "vm_dr": "resilience"}
DESCRIPTIONS = {
    "drift_breakdown": "VMs per org x site x environment x image version and status: the Drift and Images pages' "
                       "distributions (versions behind, revoked exposure, usage) without reading vm_drift.",
    "compliance_controls": "VMs failing and waived per control, per org x site x environment (plus each group's VM "
                           "count): the Compliance page's pass rates without reading vm_compliance.",
    "dr_breakdown": "VMs per org x site x environment x region x restore-point age band x gap: the DR page's "
                    "distributions without reading vm_dr.",
}


def page_table_asset(name: str):
    source = BY_NAME[name].source

    @asset(
        name=name, deps=[source], partitions_def=daily_platform, group_name=GROUPS[source], kinds={"parquet"},
        description=DESCRIPTIONS[name], check_specs=[check("counts_every_vm", asset=name, blocking=True)],
    )
    @partition_on_checks
    def _page_table(context: AssetExecutionContext, warehouse: WarehouseResource):
        day, platform = partition_day_platform(context)
        wh = warehouse.get()
        try:  # counted and checked against the per-VM rows before it replaces anything
            table, path = run_page_table(wh, name, day, platform)
        except PartitionRejected as exc:
            raise Failure(str(exc)) from exc
        counted, expected = int(pc.sum(table["vms"]).as_py() or 0), wh.num_rows(source, day, platform)
        yield MaterializeResult(metadata={"dagster/row_count": table.num_rows, "path": path, "vms": counted,
                                          "preview": preview(table)})
        yield AssetCheckResult(passed=counted == expected, asset_key=name, check_name="counts_every_vm",
                               metadata={"vms_counted": counted, f"{source}_rows": expected})

    return _page_table


drift_breakdown = page_table_asset("drift_breakdown")
compliance_controls = page_table_asset("compliance_controls")
dr_breakdown = page_table_asset("dr_breakdown")
