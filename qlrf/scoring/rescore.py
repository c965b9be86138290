"""Re-score one day x platform partition of an existing warehouse, outside Dagster.

The stages are the very functions the assets call (qlrf.scoring.stages), in the asset graph's order,
with the same evaluation instant (qlrf.dates.partition_as_of), the same catalogue and waivers, and
the same gates before anything replaces a partition, each followed by its page table
(qlrf.scoring.page_tables) so the dashboard never sums counts of an older score. Used by `qlrf score` (a user who changed a
policy re-scores a day) and by the scoring benchmark. When compliance and DR readiness both run,
their per-VM facts are set up once on one connection (stages.PartitionFacts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the stages pull in DuckDB and pyarrow: only when a stage runs
    from qlrf.scoring.stages import StageOutcome

STAGES = ("drift", "compliance", "dr")
PER_VM_TABLE = {"drift": "vm_drift", "compliance": "vm_compliance", "dr": "vm_dr"}
SCORES_TABLE = {"drift": "drift_scores", "compliance": "compliance_scores", "dr": "dr_scores"}


def parse_stages(text: str) -> tuple[str, ...]:
    """`drift,compliance` -> ('drift', 'compliance'), always in graph order; unknown names are refused by name."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in STAGES]
    if unknown or not names:
        raise ValueError(f"--stage {text!r}: expected a comma-separated list of {', '.join(STAGES)}"
                         + (f" (unknown: {', '.join(unknown)})" if unknown else ""))
    return tuple(s for s in STAGES if s in names)


@dataclass
class StageTiming:
    stage: str
    seconds: float
    outcome: StageOutcome

    def line(self) -> str:
        o = self.outcome
        return (f"{self.stage:<11} {self.seconds:6.2f} s  {PER_VM_TABLE[self.stage]} {o.rows:,} rows, "
                f"{SCORES_TABLE[self.stage]} {o.scores.num_rows:,} rows")


def score_partition(
    wh, day: date, platform: str, stages: Iterable[str] = STAGES, *, as_of: datetime | None = None,
    catalogue_path: Path | None = None, waivers_path: Path | None = None, threads: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[StageTiming]:
    """Run `stages` for `day`|`platform` over `wh`, returning each stage's wall time and outcome.

    A stage that fails raises (nothing of it is written: the warehouse's gates keep the previous
    partition); the stages before it stay written, as in the asset graph."""
    from qlrf.dates import partition_as_of
    from qlrf.scoring import compliance
    from qlrf.scoring import stages as st
    from qlrf.scoring.page_tables import BY_SOURCE, run_page_table

    as_of = as_of or partition_as_of(day)
    wanted = parse_stages(",".join(stages))
    done: list[StageTiming] = []
    facts = None
    for stage in wanted:
        started = clock()
        if stage == "drift":
            outcome = st.run_drift(wh, day, platform, as_of, threads)
        else:
            if facts is None and {"compliance", "dr"} <= set(wanted):
                facts = st.PartitionFacts(wh, day, platform, as_of, threads)  # once for both stages
            if stage == "compliance":
                catalogue = compliance.load_catalogue(catalogue_path)
                waivers = compliance.load_waivers(waivers_path, catalogue=catalogue)
                outcome = st.run_compliance(wh, day, platform, as_of, catalogue, waivers, threads, facts=facts)
            else:
                outcome = st.run_dr(wh, day, platform, as_of, threads, facts=facts)
        done.append(StageTiming(stage, clock() - started, outcome))
        # The stage's page table, as its asset does after it (timed apart: the stage's figure stays comparable).
        run_page_table(wh, BY_SOURCE[PER_VM_TABLE[stage]].name, day, platform)
    return done
