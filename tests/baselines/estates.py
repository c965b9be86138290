"""Helpers for tests that damage a sample estate's golden contracts and run the golden_images asset.

Shared by tests/baselines and the fault catalogue (tests/faults), so an attack there is staged
exactly as the unit tests stage a mistake.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import yaml

from qlrf.baselines import signing


def edit_contract(estate: Path, family: str, change: Callable[[dict], object], *, resign: bool = True) -> Path:
    """Change a contract's parsed document and (optionally) re-sign it with the estate's own key."""
    path = estate / "golden" / f"{family}.yaml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    if resign:
        signing.sign_file(path, (estate / "keys" / "cosign.key").read_bytes())
    return path


def materialize_golden(warehouse: Path, estate_root: Path, day: date):
    """Run only golden_images for `day` (in process, errors returned, not raised)."""
    from dagster import AssetSelection, materialize

    from tests.helpers import all_assets, resources_for

    return materialize(
        all_assets(),
        selection=AssetSelection.assets("golden_images"),
        partition_key=day.isoformat(),
        resources=resources_for(warehouse, estate_root),
        raise_on_error=False,
    )


def failure_message(result) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failures, "expected a step failure"
    return failures[0].step_failure_data.error.message


def problems(result) -> list[str]:
    """The refused registry's reasons: one "- ..." line each."""
    return [line for line in failure_message(result).splitlines() if line.startswith("- ")]
