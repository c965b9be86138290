"""A plain-data picture of the code location, so a test can diff it against the committed snapshot.

Everything a reviewer should notice when it changes: asset keys with their partitioning, group and
upstream partition mappings; checks and whether they block; jobs; schedules; sensors and the status
they ship with; resource keys and the executor. Regenerate with ``QLRF_UPDATE_SNAPSHOT=1 pytest tests/pipelines``.
"""

from __future__ import annotations

from typing import Any

from dagster import Definitions, MultiPartitionsDefinition, TimeWindowPartitionMapping


def _partitions(defn) -> str | None:
    if defn is None:
        return None
    if isinstance(defn, MultiPartitionsDefinition):
        return " x ".join(f"{d.name}:{type(d.partitions_def).__name__}" for d in defn.partitions_defs)
    return type(defn).__name__


def _mapping(mapping) -> str:
    if mapping is None:
        return "default"
    if isinstance(mapping, TimeWindowPartitionMapping):
        return f"TimeWindow[{mapping.start_offset}..{mapping.end_offset}]"
    return type(mapping).__name__


def definitions_snapshot(defs: Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "partitions": _partitions(node.partitions_def),
            "deps": {
                parent.to_user_string(): _mapping(node.assets_def.get_partition_mapping(parent))
                for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string())
            },
            "automation": node.automation_condition.get_label() if node.automation_condition else None,
        }
    checks = sorted(
        f"{spec.asset_key.to_user_string()}:{spec.name}{' (blocking)' if spec.blocking else ''}"
        for assets_def in defs.resolve_asset_graph().assets_defs
        for spec in assets_def.check_specs
    )
    jobs = sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__"))
    repo = defs.get_repository_def()
    schedules = {
        s.name: {"cron": s.cron_schedule, "job": s.job_name, "default_status": s.default_status.value}
        for s in sorted(repo.schedule_defs, key=lambda s: s.name)
    }
    sensors = {s.name: s.default_status.value for s in sorted(repo.sensor_defs, key=lambda s: s.name)}
    resources = sorted(defs.resources or {})
    executor = defs.executor.name if defs.executor else None
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors,
            "resources": resources, "executor": executor}
