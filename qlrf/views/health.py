"""What a day's warehouse lacks: the partitions a page needs that are missing or unreadable.

Why: a day with one platform missing still renders (the other three are real), but a person must
see that the numbers cover three platforms, and which command fills the gap.
"""

from __future__ import annotations

from dataclasses import dataclass

from qlrf.platforms import PLATFORMS
from qlrf.views.base import how_to_produce, partition_files, unreadable
from qlrf.warehouse import Warehouse

PER_PLATFORM = ("inventory", "vm_drift", "drift_scores", "drift_breakdown", "vm_compliance", "compliance_scores",
                "compliance_controls", "vm_dr", "dr_scores", "dr_breakdown")
DAILY = ("fleet_report", "fleet_sites", "drift_trends", "fleet_summary", "golden_images", "image_packages")


@dataclass(frozen=True)
class Gap:
    table: str
    platform: str | None
    problem: str  # "missing" or "unreadable: <why>"

    def sentence(self, day: str) -> str:
        where = day + (f"|{self.platform}" if self.platform else "")
        return f"{self.table} {where} is {self.problem}"


def gaps(wh: Warehouse, day: str, tables: tuple[str, ...]) -> list[Gap]:
    """Missing or unreadable partitions of `tables` for `day` (per-platform tables checked per platform)."""
    found: list[Gap] = []
    for table in tables:
        platforms = PLATFORMS if table in PER_PLATFORM else None
        present, missing = partition_files(wh, table, day, platforms)
        found += [Gap(table, p, "missing") for p in missing]
        if platforms is None and not present:
            found.append(Gap(table, None, "missing"))
        for bad in unreadable(wh, present):
            platform = next((p for p in PLATFORMS if f"platform={p}/" in bad), None) if platforms else None
            found.append(Gap(table, platform, "unreadable: " + bad.split(" (", 1)[-1].rstrip(")")))
    return found


def missing_platforms(found: list[Gap]) -> list[str]:
    """Platforms with at least one missing per-platform partition (the numbers shown leave them out)."""
    return sorted({g.platform for g in found if g.platform and g.problem == "missing"})


def explain(found: list[Gap], day: str) -> str:
    """One paragraph: what is missing and the command that produces it."""
    listed = "; ".join(g.sentence(day) for g in found[:8]) + ("; ..." if len(found) > 8 else "")
    return f"Incomplete data for {day}: {listed}. Numbers below leave those out; {how_to_produce(day)}."
