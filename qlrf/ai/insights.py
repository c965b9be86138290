"""Proactive insights: what an operator should look at today, before anyone asks (issue 10 item 7).

Each finding names its kind and subject, the numbers behind it (read from the warehouse or the
task store, never invented), a severity with a rank score, the agent that acts on it and the
intent an operator would type to act on it, so the dashboard can offer it as a one-click question.

Kinds and the rule each follows (the score is 0-100; prod weighs more than staging, staging more
than dev, and an unknown environment counts as prod, as the risk rule does):

* ``new_revocation``: golden versions revoked since the previous registry that running VMs still
  use, one finding per site x environment (with no previous registry every revocation is new).
* ``drift_forecast``: a site x environment below its environment's drift threshold today whose
  week-ahead forecast (``drift_trends``) is at or above it.
* ``waiver_expiry``: a waiver that expires within the window, or has expired and still sits in the
  file, with the VMs it waives (or, expired, the VMs now failing its control).
* ``dr_gap``: a site x environment whose DR readiness is below the objective, with the VMs that
  have no restore point within their RPO.
* ``approval_expiry``: a task waiting for approval that expires within the window (optional: only
  when a task store is given).

Ranking is deterministic (score, then kind, then subject) and a (kind, subject) pair appears once.
Everything is evaluated as of a given instant (the end of the partition's day), never "now".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol, TypeAlias

import duckdb
import pyarrow as pa

from qlrf import sql
from qlrf.ai.taskspec import AGENTS, TASK_TYPES
from qlrf.scoring.compliance import Waiver

KINDS: tuple[str, ...] = ("new_revocation", "drift_forecast", "waiver_expiry", "dr_gap", "approval_expiry")
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
WAIVER_WINDOW_DAYS = 14
FORECAST_DAYS = 7  # drift_trends forecasts a week ahead (qlrf.scoring.trends.HORIZON_DAYS)
APPROVAL_WINDOW = timedelta(hours=6)  # a 24 h approval with a quarter of its life left
# No DR objective is in policy yet: a site x environment below this share of ready VMs is a gap.
DR_READINESS_OBJECTIVE = 90.0
# The columns each kind reads, so a caller over a large estate reads only those from Parquet.
VM_DRIFT_COLUMNS = ("asset_id", "site", "environment", "platform", "state", "family", "image_version")
VM_COMPLIANCE_COLUMNS = ("asset_id", "platform", "account", "site", "environment", "owner", "failed_controls",
                         "waived_controls")
DR_SCORES_COLUMNS = ("site", "environment", "vms", "ready_vms", "rpo_breaches")
SHOWN_ASSET_IDS = 20  # VMs named in a revocation finding's facts (the count is always the full one)
_ENV_WEIGHT = {"prod": 20.0, "staging": 10.0, "dev": 0.0}
_RISK_WEIGHT = {"low": 0.0, "medium": 5.0, "high": 10.0, "critical": 15.0}

INSIGHTS_SCHEMA = pa.schema([
    ("day", pa.date32()),
    ("rank", pa.int32()),
    ("kind", pa.string()),
    ("subject", pa.string()),
    ("severity", pa.string()),
    ("score", pa.float64()),
    ("title", pa.string()),
    ("facts", pa.string()),  # JSON object: the numbers the finding rests on
    ("agent", pa.string()),
    ("task_type", pa.string()),  # what the suggested intent asks for
    ("intent", pa.string()),
])


# A per-VM table: in memory, or Parquet file(s) DuckDB scans itself (column-pruned; at a million VMs
# several times faster than reading the file into Arrow first).
Source: TypeAlias = pa.Table | str | Sequence[str]


def _register(con: duckdb.DuckDBPyConnection, name: str, source: Source, columns: Sequence[str]) -> None:
    """``source`` as view ``name`` with only ``columns`` (names are code; paths travel as values)."""
    if isinstance(source, pa.Table):
        sql.relation(con, name, source.select(list(columns)))
        return
    paths = [source] if isinstance(source, str) else list(source)
    relation = con.read_parquet(paths, hive_partitioning=False, union_by_name=True)
    relation.project(", ".join(sql.identifier(c) for c in columns)).create_view(sql.identifier(name), replace=True)


@dataclass(frozen=True)
class Insight:
    """One finding: what, how bad, the evidence, who acts and the words that would ask them to."""

    kind: str
    subject: str
    score: float
    title: str
    agent: str
    task_type: str
    intent: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return severity_for(self.score)

    def row(self, day: date, rank: int) -> dict[str, Any]:
        return {
            "day": day, "rank": rank, "kind": self.kind, "subject": self.subject, "severity": self.severity,
            "score": self.score, "title": self.title, "facts": json.dumps(dict(self.facts), sort_keys=True, default=str),
            "agent": self.agent, "task_type": self.task_type, "intent": self.intent,
        }


class PendingTask(Protocol):
    """What an approval finding needs of a task (``qlrf.remediation.approvals.Task`` has it)."""

    id: str
    state: str
    environment: str
    platform: str
    site: str | None
    risk_level: str
    expires_at: datetime | None


def severity_for(score: float) -> str:
    """Score bands: 80+ critical, 65+ high, 45+ medium, else low."""
    if score >= 80:
        return "critical"
    if score >= 65:
        return "high"
    if score >= 45:
        return "medium"
    return "low"


def _score(value: float) -> float:
    return round(min(100.0, max(0.0, value)), 1)


def _env_weight(environment: str | None) -> float:
    return _ENV_WEIGHT.get(environment or "prod", _ENV_WEIGHT["prod"])


def _where(site: str | None, environment: str | None) -> str:
    """How an operator names a scope in an intent: ``syd1 dev``."""
    return " ".join(part for part in (site, environment) if part) or "the fleet"


# --- new revocations ---------------------------------------------------------------------------------


def revoked_versions(registry: pa.Table | None) -> dict[tuple[str, str], str]:
    """(family, version) -> reason for every revoked version in a golden_images registry."""
    if registry is None or registry.num_rows == 0:
        return {}
    rows = registry.select(["family", "version", "revoked", "revoked_reason"]).to_pylist()
    return {(r["family"], r["version"]): r["revoked_reason"] or "" for r in rows if r["revoked"]}


_REVOKED_RUNNING = """
SELECT coalesce(v.site, 'unassigned') AS site, coalesce(v.environment, 'unknown') AS environment,
       count(*)::INTEGER AS vms, count(DISTINCT v.platform)::INTEGER AS platforms,
       list(DISTINCT v.family || ' ' || v.image_version ORDER BY v.family || ' ' || v.image_version) AS images,
       list(v.asset_id ORDER BY v.asset_id)[1:$shown] AS asset_ids
FROM vm_drift v JOIN new_revoked n ON v.family = n.family AND v.image_version = n.version
WHERE v.state = 'running'
GROUP BY ALL ORDER BY site, environment
"""


def new_revocations(
    registry: pa.Table, previous: pa.Table | None, vm_drift: Source, *, previous_day: str | None = None
) -> list[Insight]:
    """Versions revoked since ``previous`` (the registry before today's) still run by VMs, per site x env."""
    now = revoked_versions(registry)
    before = revoked_versions(previous)
    new = {key: reason for key, reason in now.items() if key not in before}
    if not new:
        return []
    con = sql.connect()
    pairs = pa.table({"family": [f for f, _ in new], "version": [v for _, v in new]})
    sql.relation(con, "new_revoked", pairs)
    _register(con, "vm_drift", vm_drift, VM_DRIFT_COLUMNS)
    found = []
    for r in sql.table(con, _REVOKED_RUNNING, {"shown": SHOWN_ASSET_IDS}).to_pylist():
        where = _where(r["site"], r["environment"])
        reasons = sorted({new[tuple(img.split(" ", 1))] for img in r["images"] if new.get(tuple(img.split(" ", 1)))})
        found.append(Insight(
            kind="new_revocation", subject=f"{r['site']}/{r['environment']}",
            score=_score(60 + _env_weight(r["environment"]) + min(20.0, r["vms"] / 5)),
            title=f"{r['vms']} running VMs in {where} use newly revoked images ({', '.join(r['images'])})",
            agent="patch", task_type="remediate_drift", intent=f"patch the revoked images in {where}",
            facts={"site": r["site"], "environment": r["environment"], "running_vms": r["vms"],
                   "platforms": r["platforms"], "images": list(r["images"]), "reasons": reasons,
                   "asset_ids": list(r["asset_ids"]),  # the first SHOWN_ASSET_IDS, by id
                   "revoked_since": previous_day or "no previous registry"},
        ))
    return found


# --- drift forecasts -----------------------------------------------------------------------------------


def drift_forecasts(trends: pa.Table, thresholds: Mapping[str, float]) -> list[Insight]:
    """Sites below their environment's drift threshold today, forecast at or above it within a week."""
    strictest = min(thresholds.values())
    found = []
    for r in trends.to_pylist():
        threshold = thresholds.get(r["environment"], strictest)
        score, forecast = r["drift_score"], r["forecast_next_week"]
        if score is None or forecast is None or math.isnan(forecast) or not score < threshold <= forecast:
            continue
        where = _where(r["site"], r["environment"])
        found.append(Insight(
            kind="drift_forecast", subject=f"{r['site']}/{r['environment']}",
            score=_score(45 + _env_weight(r["environment"]) + min(20.0, 2 * (forecast - threshold))),
            title=f"{where} drift {score} is forecast at {forecast} within {FORECAST_DAYS} days "
                  f"(threshold {threshold:g})",
            agent="drift", task_type="remediate_drift", intent=f"remediate drift in {where} before it breaches",
            facts={"site": r["site"], "environment": r["environment"], "drift_score": score,
                   "forecast_next_week": forecast, "threshold": threshold, "change_per_week": r.get("change_per_week"),
                   "vms": r.get("vms"), "method": r.get("method")},
        ))
    return found


# --- waivers -------------------------------------------------------------------------------------------


def waiver_expiries(
    waivers: Iterable[Waiver], on: date, vm_compliance: Source | None, *, window_days: int = WAIVER_WINDOW_DAYS
) -> list[Insight]:
    """Waivers expiring within ``window_days`` of ``on`` or already expired, with the VMs they cover."""
    con = sql.connect() if vm_compliance is not None else None
    if con is not None:
        _register(con, "vmc", vm_compliance, VM_COMPLIANCE_COLUMNS)  # type: ignore[arg-type]
    found = []
    for w in waivers:
        days_left = (w.expires - on).days
        if days_left > window_days:
            continue
        expired = days_left < 0
        column = "failed_controls" if expired else "waived_controls"
        vms = None
        if con is not None:
            predicate, params = w.match.sql("w")
            row = sql.one(con, f"SELECT count(*) FROM vmc WHERE list_contains({column}, $control) AND {predicate}",
                          {**params, "control": w.control})
            vms = int(row[0])
        if expired:
            score = 55 + min(20.0, (vms or 0) / 5)
            title = f"waiver {w.id} ({w.control}) expired on {w.expires}: " + (
                f"{vms} VMs now fail the control" if vms is not None else "renew or remove it")
        else:
            score = 40 + (window_days - days_left) + min(10.0, (vms or 0) / 10)
            title = f"waiver {w.id} ({w.control}) expires in {days_left} days" + (
                f", {vms} VMs rely on it" if vms is not None else "")
        scope = " ".join(str(v) for k, v in w.match.model_dump().items() if v and k in ("site", "environment"))
        found.append(Insight(
            kind="waiver_expiry", subject=w.id, score=_score(score), title=title,
            agent="compliance", task_type="compliance_report",
            intent=f"compliance report for {w.control}" + (f" in {scope}" if scope else "") + f" (waiver {w.id})",
            facts={"waiver": w.id, "control": w.control, "owner": w.owner, "expires": w.expires.isoformat(),
                   "days_left": days_left, "expired": expired, ("vms_failing" if expired else "vms_waived"): vms},
        ))
    return found


# --- DR ------------------------------------------------------------------------------------------------


_DR_BY_SITE = """
SELECT site, environment, sum(vms)::INTEGER AS vms, sum(ready_vms)::INTEGER AS ready_vms,
       round(100.0 * sum(ready_vms) / sum(vms), 2) AS dr_readiness,
       sum(rpo_breaches)::INTEGER AS without_recent_restore_point
FROM dr GROUP BY site, environment HAVING sum(vms) > 0 ORDER BY site, environment
"""


def dr_gaps(dr_scores: Source, objective: float = DR_READINESS_OBJECTIVE) -> list[Insight]:
    """Site x environment below the DR readiness objective, with VMs lacking a restore point within RPO."""
    con = sql.connect()
    _register(con, "dr", dr_scores, DR_SCORES_COLUMNS)
    found = []
    for r in sql.table(con, _DR_BY_SITE).to_pylist():
        if r["dr_readiness"] >= objective:
            continue
        where = _where(r["site"], r["environment"])
        found.append(Insight(
            kind="dr_gap", subject=f"{r['site']}/{r['environment']}",
            score=_score(30 + _env_weight(r["environment"]) + min(30.0, (objective - r["dr_readiness"]) / 2)),
            title=f"{where}: DR readiness {r['dr_readiness']}% (objective {objective:g}%), "
                  f"{r['without_recent_restore_point']} VMs without a restore point within RPO",
            agent="dr", task_type="dr_drill", intent=f"schedule a dr drill for {where}",
            facts={**r, "objective": objective},
        ))
    return found


# --- approvals -----------------------------------------------------------------------------------------


def approval_expiries(tasks: Iterable[PendingTask], now: datetime, window: timedelta = APPROVAL_WINDOW) -> list[Insight]:
    """Tasks pending approval whose approval lapses in (now, now + window]."""
    found = []
    for t in tasks:
        if t.state != "pending_approval" or t.expires_at is None or not now < t.expires_at <= now + window:
            continue
        hours_left = round((t.expires_at - now).total_seconds() / 3600, 2)
        urgency = 20.0 * (1 - hours_left / (window.total_seconds() / 3600))
        where = _where(t.site, t.environment)
        found.append(Insight(
            kind="approval_expiry", subject=t.id,
            score=_score(50 + urgency + _RISK_WEIGHT.get(t.risk_level, 15.0)),
            title=f"task {t.id} ({t.risk_level} risk, {t.platform} {where}) stops waiting for approval in {hours_left} h",
            agent="patch", task_type="answer", intent=f"show the pending approvals for {where}",
            facts={"task_id": t.id, "expires_at": t.expires_at.isoformat(), "hours_left": hours_left,
                   "risk_level": t.risk_level, "platform": t.platform, "site": t.site, "environment": t.environment},
        ))
    return found


# --- ranking -------------------------------------------------------------------------------------------


def rank(found: Iterable[Insight]) -> list[Insight]:
    """Deduplicated by (kind, subject), keeping the highest score; ordered by score, kind, subject."""
    best: dict[tuple[str, str], Insight] = {}
    for item in found:
        if item.kind not in KINDS:
            raise ValueError(f"insight kind {item.kind!r} is not one of {', '.join(KINDS)}")
        key = (item.kind, item.subject)
        if key not in best or item.score > best[key].score:
            best[key] = item
    return sorted(best.values(), key=lambda i: (-i.score, KINDS.index(i.kind), i.subject))


def insights_table(day: date, found: Sequence[Insight]) -> pa.Table:
    """The ranked findings as the ``ai_insights`` partition (rank 1 = most urgent); empty is valid."""
    return pa.Table.from_pylist([item.row(day, n) for n, item in enumerate(rank(found), start=1)], schema=INSIGHTS_SCHEMA)


def row_problems(table: pa.Table) -> list[str]:
    """Why rows are ill-formed (unknown kind or severity, score out of range, ranks not 1..n, no intent)."""
    problems = []
    rows = table.to_pylist()
    if [r["rank"] for r in rows] != list(range(1, len(rows) + 1)):
        problems.append("rank is not 1..n in order")
    keys = [(r["kind"], r["subject"]) for r in rows]
    if len(keys) != len(set(keys)):
        problems.append("duplicate (kind, subject)")
    for r in rows:
        where = f"rank {r['rank']} ({r['kind']} {r['subject']})"
        if r["kind"] not in KINDS:
            problems.append(f"{where}: unknown kind")
        if r["severity"] not in SEVERITIES or r["severity"] != severity_for(r["score"] or 0):
            problems.append(f"{where}: severity {r['severity']!r} does not match score {r['score']}")
        if r["score"] is None or not 0 <= r["score"] <= 100:
            problems.append(f"{where}: score {r['score']} outside 0-100")
        if r["agent"] not in AGENTS or r["task_type"] not in TASK_TYPES or not (r["intent"] or "").strip():
            problems.append(f"{where}: agent {r['agent']!r}, task type {r['task_type']!r} or intent not valid")
        try:
            if not isinstance(json.loads(r["facts"] or ""), dict):
                problems.append(f"{where}: facts is not a JSON object")
        except ValueError:
            problems.append(f"{where}: facts is not JSON")
    return problems
