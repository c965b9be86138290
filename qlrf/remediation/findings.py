"""Findings: which site x environment x platform of a drift partition needs remediation.

Findings (:func:`findings_from_partition`), one per breaching site x environment x platform of a
``drift_scores`` / ``vm_drift`` partition, as DuckDB SQL (a 1,000,000-VM partition takes well under
a second, no Python loop over VMs):

* ``drift_threshold``: drift score above the environment's threshold. Targets: the scope's VMs
  that are ``behind`` or ``revoked``.
* ``revoked_image``: below the threshold, but at least one VM runs a revoked image (and
  ``revoked_image_always_breaches``). Targets: the VMs on revoked images.

Terminated VMs are never targets, and neither are ``unknown`` / ``unmanaged`` VMs (no golden family
to move them to: they show in the score and compliance, but need a human). Environments the policy
does not name (``unknown``) produce no findings. ``Finding.fingerprint()`` is the sha256 of the
canonical finding (64 hex): sensors use it in run keys, and the plan id derives from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property

import pyarrow as pa

from qlrf import sql
from qlrf.remediation.policy import RemediationPolicy


@dataclass(frozen=True)
class Finding:
    kind: str  # "drift_threshold" | "revoked_image"
    day: str  # ISO date of the partition
    platform: str
    site: str
    environment: str
    drift_score: float
    threshold: float
    vms: int
    revoked: int
    asset_ids: tuple[str, ...]  # the targets, sorted

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "day": self.day,
            "platform": self.platform,
            "site": self.site,
            "environment": self.environment,
            "drift_score": self.drift_score,
            "threshold": self.threshold,
            "vms": self.vms,
            "revoked": self.revoked,
            "asset_ids": list(self.asset_ids),
        }

    @classmethod
    def from_dict(cls, doc: Mapping) -> Finding:
        data = dict(doc)
        data["asset_ids"] = tuple(sorted(data.get("asset_ids") or ()))
        data["day"] = str(data["day"])
        return cls(**data)

    @cached_property
    def _fingerprint(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def fingerprint(self) -> str:
        """sha256 (64 hex) of the canonical finding: same partition facts, same fingerprint."""
        return self._fingerprint

    @property
    def scope(self) -> str:
        return f"{self.platform}/{self.site}/{self.environment}"

    def summary(self) -> str:
        if self.kind == "drift_threshold":
            return (f"{self.site} {self.environment} {self.platform}: drift score {self.drift_score:g} > threshold "
                    f"{self.threshold:g} ({len(self.asset_ids)} VM(s) to move, {self.revoked} on revoked images)")
        return (f"{self.site} {self.environment} {self.platform}: {self.revoked} VM(s) on revoked images "
                f"(drift score {self.drift_score:g}, threshold {self.threshold:g})")


def _day(day: date | datetime | str) -> str:
    if isinstance(day, datetime):
        return day.date().isoformat()
    if isinstance(day, date):
        return day.isoformat()
    return date.fromisoformat(str(day)).isoformat()


def findings_from_partition(
    drift_scores: pa.Table | str | list[str],
    vm_drift: pa.Table | str | list[str],
    policy: RemediationPolicy,
    day: date | datetime | str,
    *,
    site: str | None = None,
    environment: str | None = None,
) -> list[Finding]:
    """The findings of one partition (tables, or Parquet paths), sorted by platform, site, environment.
    Several platforms' partitions of one day may come as lists of paths: one query reads them all.

    ``site``/``environment`` keep only those scopes, in the query: an AI task about one site must not
    gather the target lists of a million-VM partition to throw almost all of them away."""
    day_s = _day(day)
    con = sql.session()  # a cursor of the process's database: ~0.5 ms, where a new database costs ~50 ms
    sql.relation(con, "drift_scores", drift_scores)
    sql.relation(con, "vm_drift", vm_drift)
    limits = sorted(policy.thresholds().items())
    sql.relation(con, "thresholds", pa.table({"environment": pa.array([e for e, _ in limits], pa.string()),
                                              "threshold": pa.array([float(t) for _, t in limits], pa.float64())}))
    revoked_flag = "true" if policy.revoked_image_always_breaches else "false"
    query = f"""
WITH scopes AS (
    SELECT s.platform, s.site, s.environment, s.vms::BIGINT AS vms, s.revoked::BIGINT AS revoked,
           s.drift_score::DOUBLE AS drift_score, t.threshold::DOUBLE AS threshold,
           CASE WHEN s.drift_score > t.threshold THEN 'drift_threshold'
                WHEN {revoked_flag} AND s.revoked > 0 THEN 'revoked_image' END AS kind
    FROM drift_scores s JOIN thresholds t ON t.environment = s.environment
    WHERE ($site::VARCHAR IS NULL OR s.site = $site) AND ($environment::VARCHAR IS NULL OR s.environment = $environment)
),
breaches AS (SELECT * FROM scopes WHERE kind IS NOT NULL),
targets AS (
    SELECT v.platform, v.site, v.environment, list(v.asset_id ORDER BY v.asset_id) AS asset_ids
    FROM vm_drift v
    JOIN breaches b ON b.platform = v.platform AND b.site = v.site AND b.environment = v.environment
    WHERE coalesce(v.state, '') <> 'terminated'
      AND (v.status = 'revoked' OR (b.kind = 'drift_threshold' AND v.status = 'behind'))
    GROUP BY ALL
)
SELECT b.kind, b.platform, b.site, b.environment, b.drift_score, b.threshold, b.vms, b.revoked,
       coalesce(t.asset_ids, []::VARCHAR[]) AS asset_ids
FROM breaches b LEFT JOIN targets t USING (platform, site, environment)
ORDER BY b.platform, b.site, b.environment
"""
    result = sql.table(con, query, {"site": site, "environment": environment})
    con.close()
    cols = {name: result.column(name).to_pylist() for name in result.column_names if name != "asset_ids"}
    ids = result.column("asset_ids")
    findings = []
    for i in range(result.num_rows):
        findings.append(
            Finding(
                kind=cols["kind"][i],
                day=day_s,
                platform=cols["platform"][i],
                site=cols["site"][i],
                environment=cols["environment"][i],
                drift_score=float(cols["drift_score"][i]),
                threshold=float(cols["threshold"][i]),
                vms=int(cols["vms"][i]),
                revoked=int(cols["revoked"][i]),
                asset_ids=tuple(ids[i].values.to_pylist()) if ids[i].is_valid else (),
            )
        )
    return findings


__all__ = ["Finding", "findings_from_partition"]
