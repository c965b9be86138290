"""Asset checks as the Dagster UI shows them: each with a description, each result with its partition.

A check without a description is a name a newcomer has to reverse-engineer from the code, so every
check is declared through :func:`check`, which takes its text from :data:`DESCRIPTIONS` unless the
asset gives a more specific one (a missing entry fails the code location's loading, not a review).

Dagster 1.13 attaches a partition to a check evaluation only when the check itself is partitioned
(``AssetCheckSpec(partitions_def=...)``, a preview feature). Our partitions are re-based when the
definitions are built (QLRF_PARTITIONS_START, assets/partitions.py) and that re-basing can only
rewrite asset specs, not check specs, so partitioned checks would disagree with their assets. The
partition therefore travels in each result's metadata (``partition``), added by
:func:`partition_on_checks` around every asset body, so no result can forget it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext

# Why each check exists, in the words the Dagster UI shows next to it.
DESCRIPTIONS: dict[str, str] = {
    "has_rows": "At least one row: an empty table would silently zero every score built on it.",
    "unique_keys": "No key appears twice: a duplicate counts a VM (or image) twice in every roll-up.",
    "matches_contract": "Every column of the normalised inventory contract is present with its type.",
    "one_row_per_vm": "Exactly one row per inventoried VM: none lost or duplicated by the join.",
    "drift_score_in_range": "Drift scores lie in 0-100 with no nulls (a formula error shows here first).",
    "pct_current_in_range": "The share of VMs on the current golden image lies in 0-100 with no nulls.",
    "compliance_score_in_range": "Compliance scores lie in 0-100 with no nulls.",
    "dr_readiness_in_range": "DR readiness lies in 0-100 with no nulls.",
    "readiness_score_in_range": "The DR readiness score (RPO, rebuildability, decaying drill credit) lies in 0-100 with no nulls.",
    "drill_credit_in_range": "The share of drill credit lies in 0-100 with no nulls (credit decays from 1 to 0).",
    "every_scenario_evaluated": "Every failover scenario in the DR target map has a result for the day.",
    "forecast_next_week_in_range": "The week-ahead drift forecast lies in 0-100 (clamped least squares).",
    "has_platform_column": "Discovery facts carry their platform, so one table can hold every platform's rows.",
    "one_image_per_channel_slot": "One current golden image per family x channel x platform x region.",
    "all_platforms_present": "Every registered platform has results for the day (warns when one is missing).",
    "every_version_has_an_sbom": "Every golden-image version has a readable SPDX SBOM (warns otherwise).",
    "expectations_pass": "The great-expectations suite passes on the inventory partition.",
    "risk_score_in_range": "Risk scores lie in 0-100 with no nulls (the additive sum is clipped at 100).",
    "unknown_costs_named": "No running VM is costed at zero or left blank without naming its unpriced type.",
    "forecast_30d_in_range": "The 30-day drift forecast lies in 0-100 with no nulls.",
    "counts_every_vm": "The page table's VM counts add up to the rows of the per-VM table it was counted from.",
}


def check(name: str, asset: str, *, blocking: bool = False, description: str | None = None) -> AssetCheckSpec:
    """An AssetCheckSpec whose description is the asset's own or the catalogue's (KeyError if neither)."""
    text = description or DESCRIPTIONS.get(name)
    if not text:
        raise KeyError(f"asset check {asset}:{name} has no description: add one to assets/checks.py DESCRIPTIONS")
    return AssetCheckSpec(name, asset=asset, blocking=blocking, description=text)


def with_partition(result: AssetCheckResult, partition: str) -> AssetCheckResult:
    """`result` with the partition it judged in its metadata (its own keys win)."""
    return AssetCheckResult(
        passed=result.passed, asset_key=result.asset_key, check_name=result.check_name,
        metadata={"partition": partition, **(result.metadata or {})}, severity=result.severity,
        description=result.description,
    )


def partition_on_checks(body: Callable[..., Iterator]) -> Callable[..., Iterator]:
    """Wrap an asset body (a generator taking the context first) so every check result names its partition."""

    @functools.wraps(body)
    def wrapper(context: AssetExecutionContext, *args, **kwargs) -> Iterator:
        partition = str(context.partition_key) if context.has_partition_key else None
        for item in body(context, *args, **kwargs):
            yield with_partition(item, partition) if partition and isinstance(item, AssetCheckResult) else item

    return wrapper
