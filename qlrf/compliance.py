"""Compliance as code: the control catalogue in policy/controls.yaml, evaluated vectorised in DuckDB.

One SQL pass over a per-VM facts view evaluates every control, so a million VMs cost about a second;
Rego stays the gate for actions (see NOTES-platform: per-VM Rego is ~1 ms a decision).
Columns a control predicate may use: everything in the inventory contract, the drift columns
(status, severity, family, image_version, image_channel, image_age_days, versions_behind,
days_behind) and the DR columns (last_snapshot_at, snapshot_age_hours, rpo_hours).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from qlrf import sql

SEVERITY_WEIGHT = {"low": 1, "medium": 2, "high": 3, "critical": 5}
DEFAULT_RPO_HOURS = {"prod": 24, "staging": 72, "dev": 168}


class Control(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    title: str
    severity: Literal["low", "medium", "high", "critical"]
    rationale: str
    applies_to: list[str]
    applies_when: str
    pass_when: str


class Catalogue(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    controls: list[Control]


def default_catalogue_path() -> Path:
    return Path(__file__).resolve().parent.parent / "policy" / "controls.yaml"


def load_catalogue(path: Path | None = None) -> Catalogue:
    path = Path(path or default_catalogue_path())
    try:
        cat = Catalogue.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"{path}: invalid control catalogue: {exc}") from exc
    ids = [c.id for c in cat.controls]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path}: duplicate control ids")
    return cat


def facts_sql(rpo_hours: dict[str, int]) -> str:
    """Per-VM facts: drift row + newest snapshot + the RPO for its environment."""
    cases = " ".join(f"WHEN '{env}' THEN {int(h)}" for env, h in rpo_hours.items())
    return f"""
    CREATE OR REPLACE TEMP VIEW facts AS
    WITH snaps AS (SELECT asset_id, max(created_at) AS last_snapshot_at FROM snapshots GROUP BY asset_id)
    SELECT d.*, i.public_ip, s.last_snapshot_at,
           date_diff('minute', s.last_snapshot_at, $as_of::TIMESTAMPTZ) / 60.0 AS snapshot_age_hours,
           CASE d.environment {cases} ELSE {int(rpo_hours.get('prod', 24))} END AS rpo_hours
    FROM vm_drift d
    JOIN inventory i USING (asset_id)
    LEFT JOIN snaps s USING (asset_id)
    """


def _results_sql(catalogue: Catalogue) -> str:
    parts = [
        f"""SELECT asset_id, platform, site, environment, owner, '{c.id}' AS control_id,
                   '{c.severity}' AS severity, ({c.pass_when}) IS TRUE AS passed
            FROM facts WHERE ({c.applies_when}) IS TRUE"""
        for c in catalogue.controls
    ]
    return "\nUNION ALL\n".join(parts)


def prepare_facts(
    con: duckdb.DuckDBPyConnection,
    inventory: pa.Table | str,
    vm_drift: pa.Table | str,
    snapshots: pa.Table | str,
    as_of: datetime,
    rpo_hours: dict[str, int] | None = None,
) -> None:
    sql.relation(con, "inventory", inventory)
    sql.relation(con, "vm_drift", vm_drift)
    sql.relation(con, "snapshots", snapshots)
    con.execute(facts_sql(rpo_hours or DEFAULT_RPO_HOURS).replace("$as_of", f"TIMESTAMPTZ '{as_of.isoformat()}'"))


def vm_compliance(con: duckdb.DuckDBPyConnection, catalogue: Catalogue) -> pa.Table:
    """Long format: one row per VM x applicable control. Requires prepare_facts()."""
    try:
        return sql.table(con, _results_sql(catalogue))
    except duckdb.Error as exc:
        raise ValueError(f"a control predicate does not evaluate: {exc}") from exc


_SCORES = """
SELECT platform, site, environment,
       count(DISTINCT asset_id)::INTEGER AS vms,
       count(*)::INTEGER AS evaluations,
       count(*) FILTER (WHERE NOT passed)::INTEGER AS failures,
       count(DISTINCT asset_id) FILTER (WHERE NOT passed)::INTEGER AS non_compliant_vms,
       round(100.0 * sum(CASE WHEN passed THEN w ELSE 0 END) / sum(w), 2) AS compliance_score
FROM (SELECT *, CASE severity WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 3 ELSE 5 END AS w FROM results)
GROUP BY ALL ORDER BY platform, site, environment
"""


def compliance_scores(results: pa.Table | str, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    """Severity-weighted pass rate (0-100) per platform x site x environment."""
    con = con or sql.connect()
    sql.relation(con, "results", results)
    return sql.table(con, _SCORES)
