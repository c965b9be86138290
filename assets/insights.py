"""Proactive insights: the day's ranked findings, each with the agent and the intent that would act on it.

A thin layer over :mod:`qlrf.ai.insights`: it reads the day's registry (and the one before it), the
per-VM drift, compliance and DR tables, the drift forecast, the waiver file, the remediation policy's
thresholds and the task store's approvals about to expire, evaluated as of the end of the day.
An empty day is valid (nothing needs attention) and says so; the partition is gated before it lands.
"""

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    Failure,
    MaterializeResult,
    asset,
)

from assets.checks import check, partition_on_checks
from assets.common import partition_day, preview
from assets.partitions import by_date, daily
from qlrf.ai import insights as ins
from qlrf.quality import Gate, PartitionRejected
from qlrf.scoring.compliance import load_catalogue, load_waivers
from qlrf.scoring.report import fleet_tables_present
from qlrf.warehouse import Warehouse
from resources.remediation import RemediationResource
from resources.warehouse import WarehouseResource


def _read(wh: Warehouse, table: str, day: date, platforms: list[str], columns: tuple[str, ...]) -> ins.Source:
    """The day's platform partitions of ``table``: file paths DuckDB scans (local), else only ``columns`` read."""
    if not platforms:
        return wh.read_platforms(table, day, platforms)  # raises PartitionMissing naming the table and day
    if wh.local:
        return [str(wh.source(table, day, p)) for p in platforms]
    return pa.concat_tables([wh.read(table, day, p, columns=list(columns)) for p in platforms], promote_options="default")


def _approvals(remediation: RemediationResource, day: date) -> list[ins.Insight]:
    """Approvals are live state, not a partition: read (as of the run) only for today's partition."""
    now = datetime.now(UTC)  # the run's clock, at the edge; a backfilled day gets no approval findings
    if now.date() != day:
        return []
    return ins.approval_expiries(remediation.store().expiring_within(ins.APPROVAL_WINDOW), now)


@asset(
    partitions_def=daily,
    deps=["golden_images", "drift_trends",
          *(AssetDep(key, partition_mapping=by_date) for key in ("vm_drift", "vm_compliance", "dr_scores"))],
    group_name="report",  # part of the day's roll-up run (fleet_report_job), so `qlrf run` produces it
    kinds={"parquet"},
    description="Ranked, deduplicated findings of the day (new revocations on running VMs, drift forecast to breach "
    "within 7 days, expiring waivers, DR gaps, approvals about to expire), each with the agent and the suggested intent.",
    check_specs=[check("rows_well_formed", asset="ai_insights", blocking=True,
                       description="Known kinds, severity matching the score, ranks 1..n, unique "
                       "(kind, subject), JSON facts, an agent and an intent on every row.")],
    automation_condition=AutomationCondition.on_cron("0 6 * * *"),
)
@partition_on_checks
def ai_insights(context: AssetExecutionContext, warehouse: WarehouseResource, remediation: RemediationResource):
    day = partition_day(context)
    wh = warehouse.get()
    platforms = fleet_tables_present(wh, day)
    before = wh.latest_on_or_before("golden_images", day - timedelta(days=1))
    policy = remediation.policy()
    found = [
        *ins.new_revocations(wh.read("golden_images", day), wh.read("golden_images", before) if before else None,
                             _read(wh, "vm_drift", day, platforms, ins.VM_DRIFT_COLUMNS), previous_day=before),
        *ins.drift_forecasts(wh.read("drift_trends", day),
                             {env: p.drift_threshold for env, p in policy.environments.items()}),
        *ins.waiver_expiries(load_waivers(catalogue=load_catalogue()), day,
                             _read(wh, "vm_compliance", day, platforms, ins.VM_COMPLIANCE_COLUMNS)),
        *ins.dr_gaps(_read(wh, "dr_scores", day, platforms, ins.DR_SCORES_COLUMNS)),
        *_approvals(remediation, day),
    ]
    table = ins.insights_table(day, found)
    gate = Gate(keys=("kind", "subject"), min_rows=0, schema=ins.INSIGHTS_SCHEMA, ranges={"score": (0, 100)})
    try:
        path = wh.write("ai_insights", table, day, gate=gate, metadata={"previous_registry": before})
    except PartitionRejected as exc:
        raise Failure(str(exc)) from exc
    kinds = {kind: sum(1 for k in table["kind"].to_pylist() if k == kind) for kind in ins.KINDS}
    yield MaterializeResult(metadata={
        "dagster/row_count": table.num_rows, "path": path, **{f"kind/{k}": n for k, n in kinds.items()},
        "note": "no findings: nothing needs attention today" if table.num_rows == 0 else "-",
        "preview": preview(table.select(["rank", "kind", "subject", "severity", "score", "agent", "intent"])),
    })
    problems = ins.row_problems(table)
    yield AssetCheckResult(asset_key="ai_insights", check_name="rows_well_formed", passed=not problems,
                           metadata={"rows": table.num_rows, "problems": "; ".join(problems[:10]) or "-",
                                     "empty": table.num_rows == 0})
