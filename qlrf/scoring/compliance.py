"""Compliance as code: the control catalogue in policy/controls.yaml, evaluated vectorised in DuckDB.

One SQL pass over a per-VM facts view evaluates every control and every waiver, so a million VMs
cost about a second; Rego stays the gate for actions (per-VM Rego is ~1 ms a decision).
Columns a control predicate may use: everything in the inventory contract, the drift columns
(status, severity, family, image_version, image_channel, image_age_days, versions_behind,
days_behind) and the DR columns (last_snapshot_at, snapshot_age_hours, rpo_hours).

Per VM the result is one row: the controls that failed, the controls that failed but are waived,
and severity weights applicable / passed (a waived failure counts as passed), which is what the
severity-weighted compliance score per site is built from.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qlrf import sql
from qlrf.settings import project_root
from qlrf.tenancy import model as tenancy

SEVERITY_WEIGHT = {"low": 1, "medium": 2, "high": 3, "critical": 5}
DEFAULT_RPO_HOURS = {"prod": 24, "staging": 72, "dev": 168}
POLICY_DIR = project_root() / "policy"


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


class WaiverMatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    asset_ids: list[str] | None = None
    site: str | None = None
    environment: str | None = None
    account: str | None = None
    platform: str | None = None
    owner: str | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> WaiverMatch:
        if not any(v for v in self.model_dump().values()):
            raise ValueError("a waiver must match something (asset_ids, site, environment, account, platform or owner)")
        return self

    def sql(self, prefix: str) -> tuple[str, dict[str, object]]:
        """A predicate over the facts view and its parameters, named `<prefix>_<column>`: waiver values
        are data (a site called `x' OR '1'='1` matches only that site), never SQL text."""
        parts, params = [], {}
        for column in ("site", "environment", "account", "platform", "owner"):
            value = getattr(self, column)
            if value is not None:
                params[f"{prefix}_{column}"] = value
                parts.append(f"{column} = ${prefix}_{column}")
        if self.asset_ids:
            params[f"{prefix}_asset_ids"] = list(self.asset_ids)
            parts.append(f"list_contains(${prefix}_asset_ids::VARCHAR[], asset_id)")
        return " AND ".join(parts), params


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    control: str
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    expires: date
    match: WaiverMatch

    def active(self, on: date) -> bool:
        return on <= self.expires


class Waivers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    waivers: list[Waiver] = Field(default_factory=list)


def _load(model, path: Path, what: str):
    try:
        return model.model_validate(yaml.safe_load(Path(path).read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"{path}: invalid {what}: {exc}") from exc


def load_catalogue(path: Path | None = None) -> Catalogue:
    path = Path(path or POLICY_DIR / "controls.yaml")
    cat = _load(Catalogue, path, "control catalogue")
    ids = [c.id for c in cat.controls]
    if len(ids) != len(set(ids)):
        raise ValueError(f"{path}: duplicate control ids")
    return cat


def load_waivers(path: Path | None = None, catalogue: Catalogue | None = None) -> list[Waiver]:
    path = Path(path or POLICY_DIR / "waivers.yaml")
    if not path.exists():
        return []
    waivers = _load(Waivers, path, "waiver file").waivers
    if catalogue is not None:
        known = {c.id for c in catalogue.controls}
        for w in waivers:
            if w.control not in known:
                raise ValueError(f"{path}: waiver {w.id} names unknown control {w.control!r}")
    return waivers


def _hours(later: str, earlier: str) -> str:
    return f"((epoch({later}) - epoch({earlier})) / 3600.0)"


def prepare_facts(
    con: duckdb.DuckDBPyConnection,
    inventory: pa.Table | str,
    vm_drift: pa.Table | str,
    snapshots: pa.Table | str,
    as_of: datetime,
    rpo_hours: dict[str, int] | None = None,
) -> None:
    """Per-VM facts view: drift row + inventory extras + newest restore point + the RPO for its environment.

    A view cannot take parameters, so the as-of instant and the RPO table are registered relations
    (`facts_as_of`, `facts_rpo`) the view joins: values, not text."""
    rpo = rpo_hours or DEFAULT_RPO_HOURS
    tenancy.relation(con, "inventory", inventory)
    tenancy.relation(con, "vm_drift", vm_drift)  # org/project from the drift row (filled for pre-1.1 rows)
    sql.relation(con, "snapshots", snapshots)
    # Temporary tables filled through parameters, not Arrow tables: building an Arrow array asks pandas
    # whether its input is a pandas object, importing it (~0.2 s of every fresh scoring process).
    con.execute("CREATE OR REPLACE TEMP TABLE facts_as_of AS SELECT CAST(? AS TIMESTAMPTZ) AS as_of", [as_of])
    con.execute("CREATE OR REPLACE TEMP TABLE facts_rpo (environment VARCHAR, hours INTEGER)")
    con.executemany("INSERT INTO facts_rpo VALUES (?, ?)", [(str(e), int(h)) for e, h in rpo.items()])
    con.execute(f"""
    CREATE OR REPLACE TEMP VIEW facts AS
    WITH snaps AS (SELECT asset_id, max(created_at) AS last_snapshot_at FROM snapshots GROUP BY asset_id)
    SELECT d.*, i.public_ip, i.zone, i.name, i.instance_type, i.launched_at, i.tags, s.last_snapshot_at,
           {_hours('n.as_of', 's.last_snapshot_at')} AS snapshot_age_hours,
           coalesce(r.hours, {int(rpo.get('prod', 24))}) AS rpo_hours
    FROM vm_drift d
    JOIN inventory i USING (asset_id)
    LEFT JOIN snaps s USING (asset_id)
    LEFT JOIN facts_rpo r ON r.environment = d.environment
    CROSS JOIN facts_as_of n
    """)


def vm_compliance_query(catalogue: Catalogue, waivers: list[Waiver], on: date) -> tuple[str, dict[str, object]]:
    """(query, parameters): one row per VM; needs prepare_facts() on the connection.

    Control predicates are SQL by design (the catalogue is code, reviewed like code); control ids and
    waiver values are parameters."""
    flags, params = [], {}
    for i, c in enumerate(catalogue.controls):
        active = []
        for j, w in enumerate(waivers):
            if w.control == c.id and w.active(on):
                predicate, values = w.match.sql(f"w{j}")
                active.append(predicate)
                params.update(values)
        waived = " OR ".join(f"({m})" for m in active) or "false"
        flags.append(f"({c.applies_when}) IS TRUE AS a{i}, ({c.pass_when}) IS TRUE AS p{i}, ({waived}) IS TRUE AS w{i}")
        params[f"control{i}"] = c.id
    ids = [f"$control{i}::VARCHAR" for i in range(len(catalogue.controls))]
    weights = [SEVERITY_WEIGHT[c.severity] for c in catalogue.controls]
    n = range(len(catalogue.controls))
    failed = ", ".join(f"CASE WHEN a{i} AND NOT p{i} AND NOT w{i} THEN {ids[i]} END" for i in n)
    waived = ", ".join(f"CASE WHEN a{i} AND NOT p{i} AND w{i} THEN {ids[i]} END" for i in n)
    applicable = " + ".join(f"a{i}::INTEGER" for i in n)
    w_applicable = " + ".join(f"a{i}::INTEGER * {weights[i]}" for i in n)
    w_passed = " + ".join(f"(a{i} AND (p{i} OR w{i}))::INTEGER * {weights[i]}" for i in n)
    return f"""
    SELECT asset_id, platform, account, site, environment, owner,
           list_filter([{failed}], lambda x: x IS NOT NULL) AS failed_controls,
           list_filter([{waived}], lambda x: x IS NOT NULL) AS waived_controls,
           ({applicable})::INTEGER AS controls_applicable,
           ({w_applicable})::INTEGER AS weight_applicable,
           ({w_passed})::INTEGER AS weight_passed,
           org, project
    FROM (SELECT asset_id, platform, account, site, environment, owner, org, project, {", ".join(flags)} FROM facts)
    """, params


def vm_compliance(con: duckdb.DuckDBPyConnection, catalogue: Catalogue, waivers: list[Waiver] | None,
                  on: date) -> pa.Table:
    """Requires prepare_facts(); a predicate that does not evaluate is named in the error.

    `on` decides which waivers are active: the partition's date, never the day the code happens to run.
    """
    try:
        query, params = vm_compliance_query(catalogue, waivers or [], on)
        return sql.table(con, query, params)
    except duckdb.Error as exc:
        raise ValueError(f"a control predicate does not evaluate: {exc}") from exc


SCORES_QUERY = """
SELECT platform, site, environment,
       count(*)::INTEGER AS vms,
       count(*) FILTER (WHERE len(failed_controls) > 0)::INTEGER AS non_compliant_vms,
       sum(len(failed_controls))::INTEGER AS failures,
       sum(len(waived_controls))::INTEGER AS waived,
       round(100.0 * sum(weight_passed) / nullif(sum(weight_applicable), 0), 2) AS compliance_score
FROM vm_compliance GROUP BY ALL ORDER BY platform, site, environment
"""


def compliance_scores(results: pa.Table | str, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    """Severity-weighted pass rate (0-100) per platform x site x environment; waived failures count as passed."""
    con = con or sql.connect()
    sql.relation(con, "vm_compliance", results)
    return sql.table(con, SCORES_QUERY)
