"""Asset checks as the UI shows them: every check described, every result naming its partition."""

from __future__ import annotations

import pytest
from dagster import AssetCheckSeverity, MaterializeResult, StaticPartitionsDefinition, asset, materialize

from assets.checks import DESCRIPTIONS, check, partition_on_checks
from assets.common import rows_check


def test_every_check_of_the_code_location_has_a_description():
    """23 of 30 checks used to show no description in the Dagster UI."""
    from pipelines.definitions import defs

    specs = [spec for assets_def in defs.resolve_asset_graph().assets_defs for spec in assets_def.check_specs]
    assert len(specs) >= 30
    undescribed = [f"{s.asset_key.to_user_string()}:{s.name}" for s in specs if not (s.description or "").strip()]
    assert undescribed == []


def test_a_check_without_a_description_is_refused_when_declared():
    with pytest.raises(KeyError, match="inventory:brand_new_check has no description"):
        check("brand_new_check", "inventory")
    assert check("has_rows", "x").description == DESCRIPTIONS["has_rows"]
    assert check("has_rows", "x", description="own words").description == "own words"


def test_check_results_carry_the_partition_they_judged():
    days = StaticPartitionsDefinition(["2026-11-19", "2026-11-20"])  # time-window partitions end at the clock: not here

    @asset(partitions_def=days, check_specs=[check("has_rows", "numbers")])
    @partition_on_checks
    def numbers(context):
        yield MaterializeResult()
        yield rows_check("numbers", 0, severity=AssetCheckSeverity.WARN)  # fails: no rows

    result = materialize([numbers], partition_key="2026-11-20")
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["partition"].value == "2026-11-20"
    assert evaluation.metadata["rows"].value == 0  # the check's own metadata is kept
