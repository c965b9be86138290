"""Risk per VM and per site: an additive, interpretable score (0-100) with its top contributing factors.

Method: each factor contributes points (weights in policy/risk_weights.yaml) and the score is their
sum, clipped at 100. Every VM row keeps each contribution as a column and its top three factors as
text (``revoked_image +12``), so a reviewer can redo the sum. Inputs, all read from the day's
partitions: drift severity and days behind (vm_drift), revoked image, known-vulnerable packages in
the image's SBOM (image_packages x policy/cves.yaml), failed compliance controls by severity
(vm_compliance x policy/controls.yaml), DR gaps (vm_dr), public IP, environment and scaling-group
size (inventory). Terminated VMs carry no risk and are left out.

Limits: the weights are judgement, not fitted to incidents; factors are treated as independent
(a revoked image also raises drift severity and usually a control, so it counts more than once, on
purpose); an image outside the golden registry has no SBOM, so its vulnerabilities are unknown, not
zero (it scores through drift severity 'high' instead).

All per-VM work is one DuckDB query over Parquet, so a million VMs cost about a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat

from qlrf import sql
from qlrf.baselines.sbom import PackageQuery
from qlrf.predict.policyfile import PolicyFileError, fail, load_policy
from qlrf.settings import project_root
from qlrf.tenancy import model as tenancy

WEIGHTS_PATH = project_root() / "policy" / "risk_weights.yaml"
CVES_PATH = project_root() / "policy" / "cves.yaml"
SEVERITIES = ("low", "medium", "high", "critical")
LEVELS = ("low", "medium", "high", "critical")
FACTORS = ("drift_severity", "days_behind", "revoked_image", "vulnerable_packages", "failed_controls", "dr_gap",
           "public_ip", "environment", "group_size")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _BySeverity(_Strict):
    low: NonNegativeFloat
    medium: NonNegativeFloat
    high: NonNegativeFloat
    critical: NonNegativeFloat
    cap: NonNegativeFloat


class _DriftSeverity(_Strict):
    none: NonNegativeFloat
    low: NonNegativeFloat
    medium: NonNegativeFloat
    high: NonNegativeFloat
    critical: NonNegativeFloat


class _PerDay(_Strict):
    per_day: NonNegativeFloat
    cap: NonNegativeFloat


class _GroupSize(_Strict):
    per_doubling: NonNegativeFloat
    cap: NonNegativeFloat


class _Factors(_Strict):
    drift_severity: _DriftSeverity
    days_behind: _PerDay
    revoked_image: NonNegativeFloat
    vulnerable_packages: _BySeverity
    failed_controls: _BySeverity
    dr_gap: NonNegativeFloat
    public_ip: NonNegativeFloat
    environment: dict[str, NonNegativeFloat] = Field(min_length=1)
    group_size: _GroupSize


class _Levels(_Strict):
    medium: float = Field(gt=0, le=100)
    high: float = Field(gt=0, le=100)
    critical: float = Field(gt=0, le=100)


class RiskWeights(_Strict):
    version: Literal[1]
    factors: _Factors
    levels: _Levels

    def level(self, score: float | None) -> str:
        """The risk level a score reaches (low below `levels.medium`)."""
        if score is None:
            return "low"
        lv = self.levels
        return "critical" if score >= lv.critical else "high" if score >= lv.high else "medium" if score >= lv.medium else "low"


class Cve(_Strict):
    id: str = Field(min_length=1)
    package: str = Field(min_length=1)
    affected: str = Field(min_length=1)
    severity: Literal["low", "medium", "high", "critical"]
    summary: str = ""


class CveList(_Strict):
    version: Literal[1]
    cves: list[Cve] = Field(default_factory=list)


@dataclass(frozen=True)
class Advisory:
    cve: Cve
    query: PackageQuery


def load_weights(path: Path | str | None = None) -> RiskWeights:
    """policy/risk_weights.yaml, validated (levels must rise): PolicyFileError names the file and line."""
    path = Path(path or WEIGHTS_PATH)
    weights, lines = load_policy(RiskWeights, path, "risk weights")
    lv = weights.levels
    if not lv.medium < lv.high < lv.critical:
        raise fail(path, lines, ("levels",), f"must rise medium < high < critical, got {lv.medium}, {lv.high}, {lv.critical}")
    if "unknown" not in weights.factors.environment:
        raise fail(path, lines, ("factors", "environment"), "needs an 'unknown' entry (VMs without an environment tag)")
    return weights


def load_cves(path: Path | str | None = None) -> list[Advisory]:
    """policy/cves.yaml, each `affected` range parsed: PolicyFileError names the file and line."""
    path = Path(path or CVES_PATH)
    parsed, lines = load_policy(CveList, path, "CVE list")
    out, seen = [], set()
    for index, cve in enumerate(parsed.cves):
        if cve.id in seen:
            raise fail(path, lines, ("cves", index, "id"), f"duplicate CVE id {cve.id!r}")
        seen.add(cve.id)
        try:
            query = PackageQuery.parse(f"{cve.package}@{cve.affected}")
        except ValueError as exc:
            raise fail(path, lines, ("cves", index, "affected"), str(exc)) from exc
        out.append(Advisory(cve, query))
    return out


@lru_cache(maxsize=2)
def default_weights() -> RiskWeights:
    return load_weights()


def image_vulns(packages: pa.Table | list[dict], advisories: list[Advisory], weights: RiskWeights) -> list[dict]:
    """Per golden-image version: how many advisories its SBOM matches, their points and ids.

    Small (versions x packages), so plain Python with the same range logic as `qlrf sbom query`."""
    points = weights.factors.vulnerable_packages
    by_image: dict[tuple[str, str], dict] = {}
    rows = packages if isinstance(packages, list) else packages.to_pylist()
    for adv in advisories:
        for r in rows:
            if adv.query.matches(r["package"], r["package_version"]):
                hit = by_image.setdefault((r["family"], r["version"]), {"ids": [], "points": 0.0})
                if adv.cve.id not in hit["ids"]:
                    hit["ids"].append(adv.cve.id)
                    hit["points"] += getattr(points, adv.cve.severity)
    return [{"family": f, "version": v, "cves": len(h["ids"]), "vuln_points": h["points"], "cve_ids": sorted(h["ids"])}
            for (f, v), h in sorted(by_image.items())]


def control_severities(catalogue) -> dict[str, list[str]]:
    """severity -> control ids, from the compliance catalogue."""
    out: dict[str, list[str]] = {s: [] for s in SEVERITIES}
    for control in catalogue.controls:
        out[control.severity].append(control.id)
    return out


def params(weights: RiskWeights, controls: dict[str, list[str]]) -> dict[str, object]:
    f = weights.factors
    p: dict[str, object] = {
        "days_per_day": f.days_behind.per_day, "days_cap": f.days_behind.cap, "revoked": f.revoked_image,
        "vuln_cap": f.vulnerable_packages.cap, "ctl_cap": f.failed_controls.cap, "dr_gap": f.dr_gap,
        "public_ip": f.public_ip, "group_per": f.group_size.per_doubling, "group_cap": f.group_size.cap,
        "env_unknown": f.environment["unknown"],
        "lv_medium": weights.levels.medium, "lv_high": weights.levels.high, "lv_critical": weights.levels.critical,
    }
    for sev in ("none", *SEVERITIES):
        p[f"drift_{sev}"] = getattr(f.drift_severity, sev)
    ids = [(cid, sev) for sev in SEVERITIES for cid in controls.get(sev, [])]
    p["ctl_ids"] = [cid for cid, _ in ids]
    p["ctl_points"] = [float(getattr(f.failed_controls, sev)) for _, sev in ids]
    return p


def prepare(con: duckdb.DuckDBPyConnection, *, vm_drift, vm_compliance, vm_dr, inventory, vulns: list[dict],
            weights: RiskWeights) -> None:
    """Register the inputs; the small tables (image vulnerabilities, environment weights) are built in
    DuckDB from list parameters: building them in pyarrow would import pandas (~1-4 s cold)."""
    for name, source in (("vm_drift", vm_drift), ("vm_compliance", vm_compliance), ("vm_dr", vm_dr)):
        sql.relation(con, name, source)
    tenancy.relation(con, "inventory", inventory)  # org/project filled for 1.0 partitions
    con.execute("""CREATE OR REPLACE TEMP TABLE image_vulns AS
        SELECT unnest($f::VARCHAR[]) AS family, unnest($v::VARCHAR[]) AS version, unnest($n::INTEGER[]) AS cves,
               unnest($p::DOUBLE[]) AS vuln_points, unnest($ids::VARCHAR[]) AS cve_ids""",
                {"f": [r["family"] for r in vulns], "v": [r["version"] for r in vulns], "n": [r["cves"] for r in vulns],
                 "p": [r["vuln_points"] for r in vulns], "ids": [", ".join(r["cve_ids"]) for r in vulns]})
    env = weights.factors.environment
    con.execute("CREATE OR REPLACE TEMP TABLE env_weights AS SELECT unnest($e::VARCHAR[]) AS environment, "
                "unnest($p::DOUBLE[]) AS points", {"e": list(env), "p": list(env.values())})


def _top_keys(source: str, prefix: str, divide: str = "") -> str:
    """CTEs over `source` ending in `top3`, which adds k1 >= k2 >= k3: the three largest contributions.

    Per-row list sorting cost ~6 s per million rows; instead each contribution is encoded as one
    integer, (centipoints x 16 + factor index), so the top three are three `greatest` over nine
    columns (ties go to the later factor in FACTORS)."""
    keys = [f"(round({prefix}{f}{divide} * 100)::BIGINT * 16 + {i})" for i, f in enumerate(FACTORS)]
    k2 = ", ".join(f"CASE WHEN {k} <> k1 THEN {k} END" for k in keys)
    k3 = ", ".join(f"CASE WHEN {k} <> k1 AND {k} <> k2 THEN {k} END" for k in keys)
    return (f"top1 AS (SELECT *, greatest({', '.join(keys)}) AS k1 FROM {source}),\n"
            f"top2 AS (SELECT *, greatest({k2}) AS k2 FROM top1),\n"
            f"top3 AS (SELECT *, greatest({k3}) AS k3 FROM top2)")


_NAMES = "[" + ", ".join(f"'{f}'" for f in FACTORS) + "]"


def _part(k: str) -> str:
    return (f"CASE WHEN {k} >= 16 THEN {_NAMES}[({k} % 16)::INTEGER + 1] || ' +' "
            f"|| ({k} // 16 / 100.0)::DECIMAL(10, 2)::VARCHAR END")


# 'factor +points, factor +points, factor +points', largest first, zero contributions left out.
TOP_FACTORS_SQL = f"concat_ws(', ', {_part('k1')}, {_part('k2')}, {_part('k3')})"


VM_QUERY = f"""
WITH grp AS (
    SELECT platform, account, region, "group", count(*) AS group_size FROM inventory
    WHERE "group" IS NOT NULL AND state <> 'terminated' GROUP BY ALL
),
base AS (
    SELECT d.asset_id, d.platform, d.site, d.environment, i.org, i.project, d.owner, d.status, d.severity, d.days_behind, coalesce(i.public_ip, false) AS public_ip,
           coalesce(g.group_size, 1) AS group_size, r.gap AS dr_gap_reason,
           coalesce(v.cves, 0) AS cves, v.cve_ids, coalesce(v.vuln_points, 0) AS vuln_points,
           len(coalesce(c.failed_controls, []))::INTEGER AS failed_controls,
           list_sum(list_transform(coalesce(c.failed_controls, []),
                                   lambda x: coalesce(map($ctl_ids::VARCHAR[], $ctl_points::DOUBLE[])[x], 0))) AS ctl_points,
           coalesce(e.points, $env_unknown) AS env_points
    FROM vm_drift d
    JOIN inventory i USING (asset_id)
    LEFT JOIN vm_compliance c USING (asset_id)
    LEFT JOIN vm_dr r USING (asset_id)
    LEFT JOIN grp g ON g.platform = d.platform AND g.account = d.account AND g.region = d.region AND g."group" = d."group"
    LEFT JOIN image_vulns v ON v.family = d.family AND v.version = d.image_version
    LEFT JOIN env_weights e ON e.environment = d.environment
    WHERE d.state <> 'terminated'
),
points AS (
    SELECT *,
        CASE severity WHEN 'none' THEN $drift_none WHEN 'low' THEN $drift_low WHEN 'medium' THEN $drift_medium
                      WHEN 'high' THEN $drift_high ELSE $drift_critical END::DOUBLE AS p_drift_severity,
        least($days_cap, $days_per_day * coalesce(days_behind, 0))::DOUBLE AS p_days_behind,
        CASE WHEN status = 'revoked' THEN $revoked ELSE 0 END::DOUBLE AS p_revoked_image,
        least($vuln_cap, vuln_points)::DOUBLE AS p_vulnerable_packages,
        least($ctl_cap, coalesce(ctl_points, 0))::DOUBLE AS p_failed_controls,
        CASE WHEN dr_gap_reason IS NOT NULL THEN $dr_gap ELSE 0 END::DOUBLE AS p_dr_gap,
        CASE WHEN public_ip THEN $public_ip ELSE 0 END::DOUBLE AS p_public_ip,
        env_points::DOUBLE AS p_environment,
        least($group_cap, $group_per * log2(group_size))::DOUBLE AS p_group_size
    FROM base
),
scored AS (
    SELECT *, least(100, p_drift_severity + p_days_behind + p_revoked_image + p_vulnerable_packages
                    + p_failed_controls + p_dr_gap + p_public_ip + p_environment + p_group_size) AS raw_score
    FROM points
),
{_top_keys("scored", "p_")}
SELECT asset_id, platform, site, environment, owner, status AS drift_status, severity AS drift_severity,
       public_ip, group_size::INTEGER AS group_size, dr_gap_reason, cves::INTEGER AS vulnerable_cves, cve_ids, failed_controls,
       {", ".join(f"round(p_{f}, 2) AS {f}_points" for f in FACTORS)},
       round(raw_score, 2) AS risk_score,
       CASE WHEN raw_score >= $lv_critical THEN 'critical' WHEN raw_score >= $lv_high THEN 'high'
            WHEN raw_score >= $lv_medium THEN 'medium' ELSE 'low' END AS risk_level,
       {", ".join(f"CASE WHEN k{i} >= 16 THEN {_NAMES}[(k{i} % 16)::INTEGER + 1] END AS top_factor_{i}" for i in (1, 2, 3))},
       org, project
FROM top3
"""


SCORES_QUERY = f"""
WITH s AS (
    SELECT platform, site, environment, count(*)::INTEGER AS vms, round(avg(risk_score), 2) AS risk_score,
           round(max(risk_score), 2) AS max_risk_score,
           count(*) FILTER (WHERE risk_level = 'critical')::INTEGER AS critical_vms,
           count(*) FILTER (WHERE risk_level = 'high')::INTEGER AS high_vms,
           count(*) FILTER (WHERE risk_level = 'medium')::INTEGER AS medium_vms,
           {", ".join(f"sum({f}_points) AS t_{f}" for f in FACTORS)}
    FROM vm_risk GROUP BY ALL
),
{_top_keys("s", "t_", " / vms")}
SELECT platform, site, environment, vms, risk_score, max_risk_score, critical_vms, high_vms, medium_vms,
       {TOP_FACTORS_SQL} AS top_factors
FROM top3 ORDER BY risk_score DESC, platform, site, environment
"""

# The daily roll-up over every platform's risk_scores: per site, VM-weighted; its top factors are the
# factors with the largest VM-weighted points among the scopes' own top factors.
SITES_QUERY = """
WITH f AS (
    SELECT site, unnest(string_split(top_factors, ', ')) AS tf, vms FROM risk_scores WHERE top_factors <> ''
), factor AS (
    SELECT site, split_part(tf, ' +', 1) AS factor, sum(TRY_CAST(split_part(tf, ' +', 2) AS DOUBLE) * vms) AS weight
    FROM f GROUP BY ALL
), ranked AS (
    SELECT site, array_to_string(list(factor ORDER BY weight DESC, factor)[1:3], ', ') AS top_factors
    FROM factor GROUP BY site
)
SELECT s.site, sum(s.vms)::INTEGER AS vms, round(sum(s.risk_score * s.vms) / sum(s.vms), 2) AS risk_score,
       max(s.max_risk_score) AS max_risk_score, sum(s.critical_vms)::INTEGER AS critical_vms,
       sum(s.high_vms)::INTEGER AS high_vms, string_agg(DISTINCT s.platform, ',' ORDER BY s.platform) AS platforms,
       coalesce(any_value(r.top_factors), '') AS top_factors
FROM risk_scores s LEFT JOIN ranked r USING (site)
GROUP BY s.site ORDER BY risk_score DESC, s.site
"""


def vm_risk(con: duckdb.DuckDBPyConnection, weights: RiskWeights, controls: dict[str, list[str]]) -> pa.Table:
    """Requires prepare(); one row per non-terminated VM."""
    return sql.table(con, VM_QUERY, params(weights, controls))


def risk_scores(vm_risk_table: pa.Table | str, con: duckdb.DuckDBPyConnection | None = None) -> pa.Table:
    con = con or sql.connect()
    sql.relation(con, "vm_risk", vm_risk_table)
    return sql.table(con, SCORES_QUERY)


def risk_sites(scores: pa.Table) -> pa.Table:
    con = sql.connect()
    sql.relation(con, "risk_scores", scores)
    return sql.table(con, SITES_QUERY)


__all__ = ["Advisory", "CVES_PATH", "FACTORS", "PolicyFileError", "RiskWeights", "WEIGHTS_PATH", "control_severities",
           "default_weights", "image_vulns", "load_cves", "load_weights", "prepare", "risk_scores", "risk_sites", "vm_risk"]
