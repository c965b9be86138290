"""Stage 0: discovery fanned out over scopes inside one day x platform partition.

plan_scopes -> discover_scope (one step per batch of scopes, a DynamicOut) -> merge_scopes. The graph
is the `discovered_inventory` asset; `inventory` (assets/inventory.py) reads it and writes the
partition once, after every batch has finished: a partition is never written half-discovered.
With the in-process executor the batches run one after the other (each still runs its scopes on the
connector's thread pool); with multiprocess, Celery or Kubernetes executors they run side by side.

A batch that raises is recorded as failed scopes (which scopes, and why) and the other batches still
count, as a failing scope inside a connector always was (a plan of one batch fails its step with the
error instead, exactly as the single serial call did). QLRF_SCOPES_PER_STEP sets the batch size
(default 25; 0 = one step, exactly today's single call).

`SCOPE_OP_TAGS` are the tags the per-scope op carries (the Celery queue / concurrency pool of
discovery work are set there, in one place).

No `from __future__ import annotations` here: Dagster checks the ops' `context` annotation as a type.
"""

from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    DynamicOut,
    DynamicOutput,
    OpExecutionContext,
    Out,
    Output,
    graph_asset,
    op,
)

from assets.common import partition_day_platform
from assets.partitions import daily_platform
from assets.routing import API_OP_TAGS, API_POOL
from qlrf.envparse import environ
from qlrf.inventory import scopes as plan
from qlrf.inventory.columnar import Discovered
from qlrf.inventory.scopes import ScopeBatch
from qlrf.tenancy import model as tenancy
from resources.discovery import DiscoveryResource
from resources.estate import EstateResource

DISCOVERED = "discovered_inventory"

#: Tags of the per-scope discovery op (routing and concurrency of the work that calls the clouds):
#: under the Celery profile it goes to the cloud-API queue and holds a qlrf_cloud_api pool slot
#: (assets/routing.py); planning and merging stay on the default queue.
SCOPE_OP_TAGS: dict[str, str] = {"qlrf/stage": "discovery", **API_OP_TAGS}


@op(out=DynamicOut(ScopeBatch), description="Split the partition's discovery into batches of scopes.")
def plan_scopes(context: OpExecutionContext, estate: EstateResource, discovery: DiscoveryResource):
    day, platform = partition_day_platform(context)
    per_step = plan.scopes_per_step(environ(None).get("QLRF_SCOPES_PER_STEP"))
    found = discovery.plan(platform, day=day, discovered_at=datetime.now(UTC), estate=estate, per_step=per_step)
    scopes = sum(len(b.scopes) for b in found)
    context.log.info(f"{platform} {day}: {scopes} scopes in {len(found)} steps of at most {per_step or scopes}")
    for batch in found:
        yield DynamicOutput(batch, mapping_key=batch.key)


@op(tags=SCOPE_OP_TAGS, pool=API_POOL,
    description="Discover one batch of scopes; a batch that raises is recorded as failed scopes.")
def discover_scope(
    context: OpExecutionContext, batch: ScopeBatch, estate: EstateResource, discovery: DiscoveryResource
) -> tuple[int, Discovered]:
    day, _ = partition_day_platform(context)
    orgs = tenancy.current()
    try:
        found = discovery.discover_batch(batch, day=day, estate=estate, progress=context.log.info)
    except Exception as exc:  # noqa: BLE001 - one batch must not lose the others; recorded and reported
        if batch.total == 1:  # nothing else to keep: the step fails with the error, as serial discovery did
            raise
        failed = plan.failed_batch(batch, exc, orgs)
        context.log.warning(f"{batch.key}: FAILED: {failed.failed_scopes[0]['reason']}")
        return batch.index, failed
    # Columns from here on (qlrf/inventory/columnar.py): the hand-over to merge and inventory is cheap,
    # and a row that breaks the contract fails this step by name.
    return batch.index, Discovered.of(found, orgs)


@op(
    out={"result": Out(Discovered), "check": Out(is_required=False)},
    description="Merge the batches in plan order into the one result serial discovery gives.",
)
def merge_scopes(context: OpExecutionContext, parts: list[tuple[int, Discovered]]):
    _, platform = partition_day_platform(context)
    merged = plan.merge(platform, parts)
    planned = {index for index, _ in parts}
    yield AssetCheckResult(
        asset_key=DISCOVERED,
        check_name="every_batch_merged",
        passed=planned == set(range(len(parts))) and (merged.vms.num_rows > 0 or bool(merged.failed_scopes or merged.errors)),
        metadata={"partition": str(context.partition_key), "steps": len(parts)},  # as every check result says
    )
    yield Output(
        merged,
        output_name="result",
        metadata={
            "steps": len(parts),
            "vms": merged.vms.num_rows,
            "rejected_records": len(merged.errors),
            "failed_scopes": [f"{f['scope']}: {f['reason']}" for f in merged.failed_scopes],
        },
    )


@graph_asset(
    name=DISCOVERED,
    partitions_def=daily_platform,
    group_name="inventory",
    kinds={"python"},
    description="The partition's discovery result (rows, facts, failed scopes), fanned out over scopes.",
    check_specs=[
        AssetCheckSpec(
            "every_batch_merged", asset=DISCOVERED,
            description="every planned batch came back once, and an empty result says why (failed scopes or rejected records)",
        )
    ],
)
def discovered_inventory():
    merged, check = merge_scopes(plan_scopes().map(discover_scope).collect())
    return {"result": merged, "discovered_inventory_every_batch_merged": check}

