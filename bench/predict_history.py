"""A multi-day drift history of the sample estate for the forecast backtest (bench/bench_predict.py).

For each day: the sample estate generator's AWS exports for that day (qlrf.inventory.sample, the same
VMs whose images follow each site's hygiene: a 28-day patch cycle and a slow trend per site, redrawn
every day), normalised by the real normaliser, scored by the real drift code (qlrf.scoring.drift)
against that day's golden registry. Only the Dagster wiring and the other platforms are skipped, to
keep 120 days affordable (~1 s a day). Returns the drift_scores rows with their day.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from qlrf.baselines.contracts import load_contracts, registry_table
from qlrf.inventory.contract import inventory_table
from qlrf.inventory.sample import generate_estate
from qlrf.inventory.sources import from_manifest
from qlrf.inventory.tags import TagMapping
from qlrf.scoring import drift


def day_scores(day: date, scratch: Path, platform: str = "aws", vms: int = 5200) -> list[tuple]:
    directory = scratch / day.isoformat()
    generate_estate(directory, day, counts={platform: vms})
    as_of = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
    normalised = from_manifest(directory, platform, TagMapping(), as_of)
    inventory = inventory_table(normalised.vms)
    registry = registry_table(load_contracts(directory / "golden", require_signatures=False), as_of)
    scores = drift.drift_scores(drift.vm_drift(inventory, registry, as_of))
    return [(r["platform"], r["site"], r["environment"], day, r["drift_score"], r["vms"]) for r in scores.to_pylist()]


def drift_history(last_day: date, days: int, platform: str = "aws", vms: int = 5200) -> list[tuple]:
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory() as tmp:
        for offset in range(days - 1, -1, -1):
            rows += day_scores(last_day - timedelta(days=offset), Path(tmp), platform, vms)
    return rows
