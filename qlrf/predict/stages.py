"""The predictive stages, warehouse to warehouse: what the assets, the CLI and the benchmarks call.

Each reads the partitions scoring wrote, checks the new table before it replaces a partition
(qlrf.quality Gate: one row per VM, scores in 0-100), and returns the facts its asset reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from qlrf import sql
from qlrf.predict import risk
from qlrf.quality import Gate
from qlrf.scoring.stages import BASELINE_MAX_AGE_DAYS
from qlrf.warehouse import Warehouse


@dataclass
class PredictOutcome:
    path: str
    rows: int
    distinct_keys: int
    table: pa.Table
    table_path: str
    notes: dict[str, str] = field(default_factory=dict)


def vulnerabilities(wh: Warehouse, day: date, weights: risk.RiskWeights, advisories: list[risk.Advisory]) -> tuple[list[dict], str]:
    """(image_vulns, the image_packages day used): the newest SBOM index within the baseline window."""
    found = wh.latest_on_or_before("image_packages", day, BASELINE_MAX_AGE_DAYS)
    if found is None:
        return [], "none (vulnerable packages not scored)"
    con = sql.connect(1)  # DuckDB reads the small table without importing pyarrow.dataset (~2 s cold)
    sql.relation(con, "image_packages", wh.source("image_packages", found))
    cols = ("family", "version", "package", "package_version")
    packages = [dict(zip(cols, r, strict=True)) for r in sql.rows(con, f"SELECT {', '.join(cols)} FROM image_packages")]
    return risk.image_vulns(packages, advisories, weights), found


def run_risk(wh: Warehouse, day: date, platform: str, weights: risk.RiskWeights, advisories: list[risk.Advisory],
             controls: dict[str, list[str]], threads: int | None = None) -> PredictOutcome:
    """vm_risk (one row per non-terminated VM) and risk_scores (per site x environment) for a partition."""
    con = sql.connect(threads)
    vulns, sbom_day = vulnerabilities(wh, day, weights, advisories)
    risk.prepare(con, vm_drift=wh.source("vm_drift", day, platform), vm_compliance=wh.source("vm_compliance", day, platform),
                 vm_dr=wh.source("vm_dr", day, platform), inventory=wh.source("inventory", day, platform), vulns=vulns,
                 weights=weights)
    meta = Warehouse.file_metadata("vm_risk", day, platform, {"image_packages_date": sbom_day})
    writer = sql.copy_to_parquet(con, risk.VM_QUERY, meta, risk.params(weights, controls))
    path = wh.write_with("vm_risk", day, platform, writer,
                         gate=Gate(keys=("asset_id",), ranges={"risk_score": (0, 100)}))
    sql.relation(con, "vm_risk", wh.source("vm_risk", day, platform))
    rows, distinct = sql.one(con, "SELECT count(*), count(DISTINCT asset_id) FROM vm_risk")
    scores = risk.risk_scores(wh.source("vm_risk", day, platform), con)
    scores_path = wh.write("risk_scores", scores, day, platform, gate=Gate(ranges={"risk_score": (0, 100)}))
    levels = dict(sql.rows(con, "SELECT risk_level, count(*) FROM vm_risk GROUP BY ALL ORDER BY ALL"))
    return PredictOutcome(path, rows, distinct, scores, scores_path,
                          {"image_packages_date": sbom_day, "vulnerable_images": str(len(vulns)),
                           **{f"level/{k}": str(v) for k, v in levels.items()}})
