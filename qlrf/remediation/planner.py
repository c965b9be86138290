"""From drift to patch plans: which site x environment x platform needs remediation, and the plan for it.

Policy (``policy/remediation.yaml``, :class:`RemediationPolicy`): per environment the drift
threshold, autonomy mode, canary share, batch count, max unavailable, health gate and (prod)
maintenance window, plus ``revoked_image_always_breaches``.

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

Plans (:func:`build_plans`): one per golden family and, where the golden image is regional (always
for AWS AMIs; elsewhere when the registry has no ``*`` image), per region. In each:

* targets: drifted VMs in a scaling group become the group (``asg`` / ``vmss`` / ``mig`` by
  platform; size = the ``scaling_groups`` fact's desired capacity, else the group's VMs in the
  partition; a group goes to the plan of its drifted members' most common family); the other
  drifted VMs are instances. vSphere VMs are always instances.
* from_images: the targets' distinct current images; to_image: the current golden version for the
  environment's channel (newest non-revoked version promoted at least that far, as drift computes
  it) for the platform and region.
* waves: a canary (``canary_percent`` of the instances, at least one, and that share of every
  group), then up to ``batches`` batches splitting the rest evenly (empty batches are dropped).
* risk (:func:`risk_level`): low = dev, at most 100 targets, no revoked image; medium = staging or
  more than 100 targets; high = prod, any revoked image among the targets, or more than 1000
  targets; critical = prod with more than 1000 targets.
* rollback: AWS groups ``previous_launch_template_version``, GCP groups
  ``previous_instance_template``, vSphere ``restore_clone``, everything else ``previous_image``.
* id ``rp-<fingerprint[:12]>-<family>[-<region>]``: deterministic. ``created_at`` is ``now`` or, by
  default, the finding's day at 00:00 UTC, so building the same finding twice gives the same plan
  and content hash (and ``TaskStore.propose`` is idempotent on it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from qlrf import sql
from qlrf.baselines.contracts import CHANNELS
from qlrf.baselines.versions import version_key
from qlrf.remediation.gate import default_policy_dir, percent
from qlrf.remediation.plans import (
    AutonomyMode,
    GroupTarget,
    HealthGate,
    ImageRef,
    InstanceTarget,
    MaintenanceWindow,
    Metadata,
    PatchPlan,
    Rollback,
    Spec,
    Targets,
    Wave,
)

ENV_REMEDIATION_POLICY = "QLRF_REMEDIATION_POLICY"
ENVIRONMENTS: tuple[str, ...] = ("dev", "staging", "prod")
GROUP_KIND = {"aws": "asg", "azure": "vmss", "gcp": "mig"}
GROUP_ROLLBACK = {"aws": "previous_launch_template_version", "gcp": "previous_instance_template", "azure": "previous_image"}
RISK_ORDER = ("low", "medium", "high", "critical")

DEFAULTS: dict[str, dict[str, Any]] = {
    "dev": {"drift_threshold": 60, "compliance_floor": 70, "autonomy_mode": "full_auto", "canary_percent": 20, "batches": 2,
            "max_unavailable": 5, "health_gate": {"timeout_seconds": 600, "min_healthy_percent": 80},
            "maintenance_window": None},
    "staging": {"drift_threshold": 45, "compliance_floor": 80, "autonomy_mode": "canary_only", "canary_percent": 10, "batches": 3,
                "max_unavailable": 3, "health_gate": {"timeout_seconds": 900, "min_healthy_percent": 90},
                "maintenance_window": None},
    "prod": {"drift_threshold": 30, "compliance_floor": 90, "autonomy_mode": "canary_only", "canary_percent": 5, "batches": 4,
             "max_unavailable": 1, "health_gate": {"timeout_seconds": 1200, "min_healthy_percent": 100},
             "maintenance_window": {"days": ["sat", "sun"], "start": "22:00", "end": "04:00"}},
}


class RemediationPolicyError(ValueError):
    """An unusable remediation policy file; the message names the file and the field."""


# --- policy ----------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthGatePolicy(_Strict):
    timeout_seconds: int = Field(default=600, ge=1, le=86_400)
    min_healthy_percent: int = Field(default=100, ge=1, le=100)


class EnvironmentPolicy(_Strict):
    drift_threshold: float = Field(ge=0, le=100)
    compliance_floor: float = Field(default=80, ge=0, le=100)
    autonomy_mode: AutonomyMode
    canary_percent: int = Field(ge=1, le=50)
    batches: int = Field(ge=1, le=20)
    max_unavailable: int = Field(ge=1)
    health_gate: HealthGatePolicy = HealthGatePolicy()
    maintenance_window: MaintenanceWindow | None = None

    @model_validator(mode="after")
    def _room_for_batches(self) -> EnvironmentPolicy:
        if 100 - self.canary_percent < self.batches:
            raise ValueError(f"batches ({self.batches}) cannot split the {100 - self.canary_percent}% left after the canary")
        return self


class RemediationPolicy(_Strict):
    version: Literal[1] = 1
    revoked_image_always_breaches: bool = True
    environments: dict[Literal["dev", "staging", "prod"], EnvironmentPolicy]

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, doc: Any) -> Any:
        """Environments and fields the file leaves out take the built-in defaults."""
        if not isinstance(doc, Mapping):
            return doc
        doc = dict(doc)
        given = doc.get("environments") or {}
        if not isinstance(given, Mapping):
            return doc
        merged: dict[str, Any] = {}
        for env in sorted(set(ENVIRONMENTS) | set(given), key=lambda e: (e not in ENVIRONMENTS, e)):
            value = given.get(env)
            if env in DEFAULTS and (value is None or isinstance(value, Mapping)):
                merged[env] = {**DEFAULTS[env], **(value or {})}
            else:
                merged[env] = value  # unknown environment or a bad value: validation names it
        doc["environments"] = merged
        return doc

    @model_validator(mode="after")
    def _prod_never_full_auto(self) -> RemediationPolicy:
        if self.environments["prod"].autonomy_mode == "full_auto":
            raise ValueError("environments.prod.autonomy_mode: production is never full_auto (use plan_only or canary_only)")
        return self

    @classmethod
    def default_path(cls) -> Path:
        return Path(os.environ.get(ENV_REMEDIATION_POLICY) or default_policy_dir() / "remediation.yaml")

    @classmethod
    def defaults(cls) -> RemediationPolicy:
        return cls.model_validate({})

    @classmethod
    def load(cls, path: str | Path | None = None) -> RemediationPolicy:
        """The policy file (default: ``$QLRF_REMEDIATION_POLICY`` or ``policy/remediation.yaml``)."""
        path = Path(path) if path else cls.default_path()
        try:
            doc = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise RemediationPolicyError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise RemediationPolicyError(f"{path}: not YAML: {exc}") from exc
        if doc is None:
            doc = {}
        if not isinstance(doc, Mapping):
            raise RemediationPolicyError(f"{path}: invalid remediation policy: expected a mapping")
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(policy)'}: {e['msg']}" for e in exc.errors())
            raise RemediationPolicyError(f"{path}: invalid remediation policy: {fields}") from exc

    def for_env(self, environment: str) -> EnvironmentPolicy:
        try:
            return self.environments[environment]  # type: ignore[index]
        except KeyError:
            raise RemediationPolicyError(f"no remediation policy for environment {environment!r}") from None

    def thresholds(self) -> dict[str, float]:
        return {env: p.drift_threshold for env, p in self.environments.items()}


# --- findings --------------------------------------------------------------------------------------


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
    drift_scores: pa.Table | str,
    vm_drift: pa.Table | str,
    policy: RemediationPolicy,
    day: date | datetime | str,
) -> list[Finding]:
    """The findings of one partition (tables, or Parquet paths), sorted by platform, site, environment."""
    day_s = _day(day)
    con = sql.connect()
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
    result = sql.table(con, query)
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


# --- plans -----------------------------------------------------------------------------------------


def risk_level(environment: str, targets: int, revoked: bool) -> str:
    """The plan's risk (see the module docstring for the rule)."""
    level = {"dev": 0, "staging": 1}.get(environment, 2)  # prod and anything unknown: high
    if targets > 100:
        level = max(level, 1)
    if revoked or targets > 1000:
        level = max(level, 2)
    if environment == "prod" and targets > 1000:
        level = 3
    return RISK_ORDER[level]


def _split(n: int, parts: int) -> list[int]:
    base, extra = divmod(n, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def plan_waves(instance_ids: Sequence[str], group_names: Sequence[str], env: EnvironmentPolicy) -> list[Wave]:
    """A canary wave, then up to `env.batches` batches (see the module docstring)."""
    instances = list(instance_ids)
    groups = sorted(group_names)
    n = len(instances)
    canary_n = min(n, max(1, math.ceil(n * env.canary_percent / 100))) if n else 0
    waves = [Wave(name="canary", canary=True, instances=instances[:canary_n], groups=groups,
                  group_percent=env.canary_percent if groups else 100)]
    rest = instances[canary_n:]
    shares = _split(100 - env.canary_percent, env.batches)
    sizes = _split(len(rest), env.batches)
    start = 0
    for index, (size, share) in enumerate(zip(sizes, shares, strict=True), start=1):
        chunk = rest[start : start + size]
        start += size
        if not chunk and not groups:
            continue
        waves.append(Wave(name=f"batch-{index}", instances=chunk, groups=groups, group_percent=share if groups else 100))
    return waves


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.-]+", "-", str(text).lower()).strip("-") or "x"


@dataclass
class _Golden:
    version: str
    images: dict[str, str]  # region ('*' = any) -> image_ref

    @property
    def regional(self) -> bool:
        return "*" not in self.images

    def image_for(self, region: str) -> str | None:
        return self.images.get(region) or self.images.get("*")


def current_golden(registry: pa.Table | Sequence[Mapping], platform: str, environment: str) -> dict[str, _Golden]:
    """family -> the current golden version for `environment`'s channel and its `platform` images."""
    rows = registry.to_pylist() if isinstance(registry, pa.Table) else [dict(r) for r in registry]
    level = CHANNELS.index(environment) if environment in CHANNELS else len(CHANNELS) - 1
    best: dict[str, tuple[Any, str]] = {}
    for r in rows:
        if r.get("revoked"):
            continue
        channel_level = r.get("channel_level")
        if channel_level is None:
            channel_level = CHANNELS.index(r["channel"]) if r.get("channel") in CHANNELS else -1
        if channel_level < level:
            continue
        rank = (r["version_rank"],) if r.get("version_rank") is not None else version_key(r["version"])
        current = best.get(r["family"])
        if current is None or rank > current[0]:
            best[r["family"]] = (rank, r["version"])
    out: dict[str, _Golden] = {}
    for family, (_, version) in best.items():
        images = {
            str(r.get("region") or "*"): r["image_ref"]
            for r in rows
            if r["family"] == family and r["version"] == version and r["platform"] == platform and r.get("image_ref")
        }
        if images:
            out[family] = _Golden(version, images)
    return out


def _target_rows(finding: Finding, vm_drift: pa.Table | str) -> tuple[list[dict], dict[tuple, int]]:
    """The finding's VMs (with their columns) and the partition's group sizes for their groups."""
    con = sql.connect()
    sql.relation(con, "vm_drift", vm_drift)
    con.register("wanted", pa.table({"asset_id": pa.array(list(finding.asset_ids), pa.string())}))
    columns = set(con.sql("SELECT * FROM vm_drift LIMIT 0").columns)
    name = "v.name" if "name" in columns else "v.asset_id"
    rows = con.sql(
        f"""SELECT v.asset_id, {name} AS name, v.account, v.region, v."group" AS grp, v.image_ref, v.family,
                   v.image_version, v.status
            FROM vm_drift v JOIN wanted w USING (asset_id)
            WHERE v.platform = $platform AND v.site = $site AND v.environment = $environment
            ORDER BY v.asset_id""",
        params={"platform": finding.platform, "site": finding.site, "environment": finding.environment},
    ).to_arrow_table().to_pylist()
    sizes: dict[tuple, int] = {}
    if any(r["grp"] for r in rows):
        for account, region, grp, n in con.sql(
            """SELECT account, region, "group", count(*) FROM vm_drift
               WHERE platform = $platform AND "group" IS NOT NULL AND coalesce(state, '') <> 'terminated'
               GROUP BY ALL""",
            params={"platform": finding.platform},
        ).fetchall():
            sizes[(account, region, grp)] = int(n)
    con.close()
    return rows, sizes


def _group_facts(scaling_groups: Sequence[Mapping] | None) -> tuple[dict[tuple, Mapping], dict[str, list[Mapping]]]:
    exact: dict[tuple, Mapping] = {}
    by_name: dict[str, list[Mapping]] = {}
    for g in scaling_groups or []:
        name = g.get("group_name") or g.get("name")
        if not name:
            continue
        exact[(str(g.get("account")), str(g.get("region")), str(name))] = g
        by_name.setdefault(str(name), []).append(g)
    return exact, by_name


def _fact_for(exact: dict, by_name: dict, account: str, region: str, name: str) -> Mapping | None:
    fact = exact.get((str(account), str(region), str(name)))
    if fact is None and len(by_name.get(str(name), [])) == 1:
        fact = by_name[str(name)][0]
    return fact


def _fact_size(fact: Mapping | None) -> int | None:
    if fact is None:
        return None
    for key in ("desired_capacity", "target_size", "size", "member_count"):
        if fact.get(key) is not None:
            return int(fact[key])
    return None


def build_plans(
    finding: Finding,
    vm_drift: pa.Table | str,
    registry: pa.Table | Sequence[Mapping],
    policy: RemediationPolicy,
    scaling_groups: list[dict] | None = None,
    now: datetime | None = None,
    *,
    created_by: str = "qlrf.remediation.planner",
    skipped: list[str] | None = None,
) -> list[PatchPlan]:
    """Every plan the finding needs (one per family, and per region where images are regional).

    Targets that cannot be planned (no current golden image for their family on this platform and
    region) are left out; why is appended to `skipped` when a list is given.
    """
    env = policy.for_env(finding.environment)
    platform = finding.platform
    golden = current_golden(registry, platform, finding.environment)
    rows, partition_sizes = _target_rows(finding, vm_drift)
    grouped = platform in GROUP_KIND
    notes: list[str] = []

    # Scaling groups: the family most of their drifted members run.
    group_family: dict[tuple, str] = {}
    members: dict[tuple, list[dict]] = {}
    for r in rows:
        if grouped and r["grp"]:
            members.setdefault((r["account"], r["region"], r["grp"]), []).append(r)
    for key, vms in members.items():
        counts = Counter(v["family"] for v in vms if v["family"])
        if counts:
            group_family[key] = min(counts, key=lambda f: (-counts[f], f))

    slices: dict[tuple[str, str | None], dict[str, Any]] = {}

    def slice_for(family: str | None, region: str, what: str) -> dict | None:
        if not family:
            notes.append(f"{what}: image has no golden family")
            return None
        gold = golden.get(family)
        if gold is None or gold.image_for(region) is None:
            notes.append(f"{what}: no current golden {family} image for {platform}/{region} at channel {finding.environment}")
            return None
        key = (family, region if gold.regional else None)
        return slices.setdefault(key, {"instances": [], "groups": {}, "vms": [], "gold": gold})

    for r in rows:
        if grouped and r["grp"]:
            continue
        s = slice_for(r["family"], r["region"], f"VM {r['asset_id']}")
        if s is not None:
            s["instances"].append(r)
            s["vms"].append(r)
    exact, by_name = _group_facts(scaling_groups)
    for key, vms in sorted(members.items()):
        account, region, name = key
        s = slice_for(group_family.get(key), region, f"group {name}")
        if s is None:
            continue
        fact = _fact_for(exact, by_name, account, region, name)
        size = _fact_size(fact)
        if size is None:
            size = partition_sizes.get(key, len(vms))
        s["groups"][name] = {"account": account, "region": region, "size": size, "fact": fact}
        s["vms"].extend(vms)

    created_at = now.astimezone(UTC) if now else datetime.combine(date.fromisoformat(finding.day), time(0), UTC)
    fingerprint = finding.fingerprint()
    plans = []
    for (family, region), s in sorted(slices.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        gold: _Golden = s["gold"]
        instances = [
            InstanceTarget(asset_id=r["asset_id"], platform=platform, account=r["account"], region=r["region"],
                           name=r["name"] or r["asset_id"], from_image=r["image_ref"])
            for r in s["instances"]
        ]
        groups = [
            GroupTarget(kind=GROUP_KIND[platform], platform=platform, account=g["account"], region=g["region"], name=name,
                        size=g["size"])
            for name, g in sorted(s["groups"].items())
        ]
        from_images = sorted(
            {(v["image_ref"], v["family"], v["image_version"]) for v in s["vms"] if v["image_ref"]}
        )
        revoked = any(v["status"] == "revoked" for v in s["vms"])
        count = sum(g.size for g in groups) + len(instances)
        to_ref = gold.image_for(region or next(iter(sorted({v["region"] for v in s["vms"]}))))
        rollback = _rollback(platform, groups, s["groups"], from_images)
        plan_id = f"rp-{fingerprint[:12]}-{_slug(family)}" + (f"-{_slug(region)}" if region else "")
        where = f"{family}" + (f" in {region}" if region else "")
        reason = f"{finding.summary()}: {len(s['vms'])} VM(s) on {where} -> {gold.version}"
        plan = PatchPlan(
            metadata=Metadata(
                id=plan_id,
                created_at=created_at,
                created_by=created_by,
                reason=reason,
                environment=finding.environment,
                platform=platform,
                site=finding.site,
                risk_level=risk_level(finding.environment, count, revoked),
                autonomy_mode=env.autonomy_mode,
                finding={
                    "kind": finding.kind,
                    "day": finding.day,
                    "fingerprint": fingerprint,
                    "drift_score": finding.drift_score,
                    "threshold": finding.threshold,
                    "vms": finding.vms,
                    "revoked": finding.revoked,
                    "family": family,
                    "region": region,
                    "target_vms": len(s["vms"]),
                },
            ),
            spec=Spec(
                targets=Targets(groups=groups, instances=instances),
                from_images=[ImageRef(image_ref=ref, family=fam, version=ver) for ref, fam, ver in from_images],
                to_image=ImageRef(image_ref=to_ref, family=family, version=gold.version),
                waves=plan_waves([t.asset_id for t in instances], [g.name for g in groups], env),
                health_gate=HealthGate(timeout_seconds=env.health_gate.timeout_seconds,
                                       min_healthy_percent=env.health_gate.min_healthy_percent),
                max_unavailable=env.max_unavailable,
                maintenance_window=env.maintenance_window,
                rollback=rollback,
            ),
        )
        plans.append(plan.sealed())
    if skipped is not None:
        skipped.extend(notes)
    return plans


def _rollback(platform: str, groups: list[GroupTarget], facts: dict[str, dict], from_images: list[tuple]) -> Rollback:
    single_image = from_images[0][0] if len(from_images) == 1 else None
    if platform == "vsphere":
        return Rollback(strategy="restore_clone", image_ref=single_image)
    if groups and platform in GROUP_ROLLBACK:
        strategy = GROUP_ROLLBACK[platform]
        if strategy == "previous_launch_template_version":
            versions = {
                str(v) for g in facts.values() if g.get("fact")
                for v in [g["fact"].get("launch_template_resolved_version") or g["fact"].get("launch_template_version")]
                if v is not None
            }
            return Rollback(strategy=strategy, launch_template_version=versions.pop() if len(versions) == 1 and len(groups) == 1 else None)
        return Rollback(strategy=strategy, image_ref=single_image)
    return Rollback(strategy="previous_image", image_ref=single_image)


def build_plan(
    finding: Finding,
    vm_drift: pa.Table | str,
    registry: pa.Table | Sequence[Mapping],
    policy: RemediationPolicy,
    scaling_groups: list[dict] | None = None,
    now: datetime | None = None,
    *,
    created_by: str = "qlrf.remediation.planner",
) -> PatchPlan:
    """The one plan for a finding whose targets share a family (and, for regional images, a region).

    A finding that needs several plans raises ``ValueError`` naming them: use :func:`build_plans`.
    """
    skipped: list[str] = []
    plans = build_plans(finding, vm_drift, registry, policy, scaling_groups, now, created_by=created_by, skipped=skipped)
    if not plans:
        why = "; ".join(skipped[:5]) or "no targets"
        raise ValueError(f"finding {finding.scope} ({finding.kind}) yields no plan: {why}")
    if len(plans) > 1:
        raise ValueError(
            f"finding {finding.scope} needs {len(plans)} plans (one per family/region: "
            f"{', '.join(p.metadata.id for p in plans)}): use build_plans"
        )
    return plans[0]


def gate_request(
    plan: PatchPlan,
    *,
    requested_by: str,
    fleet_size: int,
    wave: int = 0,
    action: str = "execute_wave",
    now: datetime | None = None,
    approval: Mapping | None = None,
) -> dict:
    """The Rego gate input (see qlrf/gate.py) for one wave of `plan` (or its rollback)."""
    sealed = plan if plan.content_hash else plan.sealed()
    targets = sealed.wave_targets(wave) if action == "execute_wave" else sealed.spec.targets.count()
    window = sealed.spec.maintenance_window
    request: dict[str, Any] = {
        "action": action,
        "environment": sealed.metadata.environment,
        "autonomy_mode": sealed.metadata.autonomy_mode,
        "risk_level": sealed.metadata.risk_level,
        "plan_hash": sealed.content_hash,
        "targets": targets,
        "requested_by": requested_by,
        "maintenance_window_open": True if window is None else window.is_open(now or datetime.now(UTC)),
        "fleet_size": fleet_size,
        "plan_id": sealed.metadata.id,
        "site": sealed.metadata.site,
        "platform": sealed.metadata.platform,
    }
    if action == "execute_wave":
        request.update(wave=wave, canary=sealed.spec.waves[wave].canary, drift_delta=min(100.0, percent(targets, fleet_size)))
    if approval is not None:
        request["approval"] = dict(approval)
    return request


__all__ = [
    "DEFAULTS",
    "EnvironmentPolicy",
    "Finding",
    "HealthGatePolicy",
    "RemediationPolicy",
    "RemediationPolicyError",
    "build_plan",
    "build_plans",
    "current_golden",
    "findings_from_partition",
    "gate_request",
    "plan_waves",
    "risk_level",
]
