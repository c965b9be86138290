"""The remediation planner as it was before plan candidates (main at a47016c), kept as the oracle.

tests/remediation/test_planner_scoped.py checks that the columnar planner (qlrf/remediation/planner.py)
gives the same plans, hash for hash, and the same notes. Do not edit it to follow the planner: it is
the previous path by definition. Below, the original module docstring.

From a finding to patch plans (:func:`build_plans`): targets, waves, risk, rollback and ids.

The finding comes from :mod:`qlrf.remediation.findings`, the environment's rules from
:mod:`qlrf.remediation.policy`.

One plan per golden family and, where the golden image is regional (always
for AWS AMIs; elsewhere when the registry has no ``*`` image), per region. In each:

* targets: drifted VMs in a scaling group become the group (``asg`` / ``vmss`` / ``mig`` by
  platform; size = the ``scaling_groups`` fact's desired capacity, else the group's VMs in the
  partition; its ``region`` is the fact's zone for a zonal MIG, see :func:`group_location`); the
  other drifted VMs are instances (standalone AWS/Azure/GCP VMs, each driver replaces its kind).
  vSphere VMs are always instances (in a DRS cluster or not).
* never change what a VM is: a target moves only to a newer version of its own image family, and
  carries that ``from_family`` (the gate checks it). A group whose members (every non-terminated
  member in the partition, drifted or not) run more than one family, or an image with no family,
  is not planned: rebuilding it from one family's image would change the OS of the others. The
  note naming it (``MIXED_GROUP`` ...) goes to `skipped`, for the planning output and the audit.
* from_images: the targets' distinct current images; to_image: the current golden version for the
  environment's channel (newest non-revoked version promoted at least that far, as drift computes
  it) for the platform and region.
* waves: a canary (``canary_percent`` of the instances, at least one, and that share of every
  group), then up to ``batches`` batches splitting the rest evenly (empty batches are dropped).
* risk (:func:`risk_level`): low = dev, at most 100 targets, no revoked image; medium = staging or
  more than 100 targets; high = prod, any revoked image among the targets, or more than 1000
  targets; critical = prod with more than 1000 targets; raised (never lowered) to the level the
  highest risk score among the targets reaches, when the day's vm_risk is given (``risk_scores``).
* rollback: AWS groups ``previous_launch_template_version``, GCP groups
  ``previous_instance_template``, vSphere ``restore_clone``, everything else ``previous_image``.
* id ``rp-<fingerprint[:12]>-<family>[-<region>]``: deterministic. ``created_at`` is ``now`` or, by
  default, the finding's day at 00:00 UTC, so building the same finding twice gives the same plan
  and content hash (and ``TaskStore.propose`` is idempotent on it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import pyarrow as pa

from qlrf import sql
from qlrf.baselines.contracts import CHANNELS
from qlrf.baselines.versions import version_key
from qlrf.platforms import REGISTRY
from qlrf.remediation.findings import Finding
from qlrf.remediation.plans import (
    GroupTarget,
    HealthGate,
    ImageRef,
    InstanceTarget,
    Metadata,
    PatchPlan,
    Rollback,
    Spec,
    Targets,
    Wave,
)
from qlrf.remediation.policy import EnvironmentPolicy, RemediationPolicy
from qlrf.tenancy import model as tenancy

GROUP_KIND = {p.name: p.group_kind for p in REGISTRY if p.group_kind}
GROUP_ROLLBACK = {p.name: p.group_rollback for p in REGISTRY if p.group_rollback}
RISK_ORDER = ("low", "medium", "high", "critical")
MIXED_GROUP = "mixed-family group"  # how a skipped note about a group of several families starts


def risk_level(environment: str, targets: int, revoked: bool, risk_score: float | None = None) -> str:
    """The plan's risk (see the module docstring for the rule).

    `risk_score`: the highest risk score (qlrf/predict/risk.py, 0-100) among the plan's targets, when
    the day's vm_risk exists; it can only raise the level, to the one its score reaches
    (policy/risk_weights.yaml `levels`)."""
    level = {"dev": 0, "staging": 1}.get(environment, 2)  # prod and anything unknown: high
    if targets > 100:
        level = max(level, 1)
    if revoked or targets > 1000:
        level = max(level, 2)
    if environment == "prod" and targets > 1000:
        level = 3
    if risk_score is not None:
        from qlrf.predict.risk import default_weights

        level = max(level, RISK_ORDER.index(default_weights().level(risk_score)))
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


def _target_rows(finding: Finding, vm_drift: pa.Table | str) -> tuple[list[dict], dict[tuple, int], dict[tuple, list]]:
    """The finding's VMs (with their columns), the partition's group sizes and each group's families."""
    con = sql.connect()
    tenancy.relation(con, "vm_drift", vm_drift)  # org/project, filled from the mapping for pre-1.1 rows
    con.register("wanted", pa.table({"asset_id": pa.array(list(finding.asset_ids), pa.string())}))
    columns = set(con.sql("SELECT * FROM vm_drift LIMIT 0").columns)
    name = "v.name" if "name" in columns else "v.asset_id"
    rows = con.sql(
        f"""SELECT v.asset_id, {name} AS name, v.account, v.region, v."group" AS grp, v.image_ref, v.family,
                   v.image_version, v.status, v.org, v.project
            FROM vm_drift v JOIN wanted w USING (asset_id)
            WHERE v.platform = $platform AND v.site = $site AND v.environment = $environment
            ORDER BY v.asset_id""",
        params={"platform": finding.platform, "site": finding.site, "environment": finding.environment},
    ).to_arrow_table().to_pylist()
    sizes: dict[tuple, int] = {}
    families: dict[tuple, list] = {}
    if any(r["grp"] for r in rows):
        for account, region, grp, n, fams in con.sql(
            """SELECT account, region, "group", count(*), list(DISTINCT coalesce(family, '')) FROM vm_drift
               WHERE platform = $platform AND "group" IS NOT NULL AND coalesce(state, '') <> 'terminated'
               GROUP BY ALL""",
            params={"platform": finding.platform},
        ).fetchall():
            sizes[(account, region, grp)] = int(n)
            families[(account, region, grp)] = sorted(f or None for f in fams) if all(fams) else [None, *sorted(f for f in fams if f)]
    con.close()
    return rows, sizes, families


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


def group_location(fact: Mapping | None, region: str) -> str:
    """Where a group's API addresses it: a zonal group by its zone (a GCP zonal MIG's fact names one;
    regional MIGs and other platforms' groups have none), any other by its region. The driver tells
    a zonal from a regional MIG by this location, so a zonal MIG planned by its region would not be found."""
    zone = fact.get("zone") if fact is not None else None
    return zone if isinstance(zone, str) and zone else region


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
    risk_scores: Mapping[str, float] | None = None,
) -> list[PatchPlan]:
    """Every plan the finding needs (one per family, and per region where images are regional).

    Targets that cannot be planned (no current golden image for their family on this platform and
    region) are left out; why is appended to `skipped` when a list is given.
    """
    env = policy.for_env(finding.environment)
    platform = finding.platform
    golden = current_golden(registry, platform, finding.environment)
    rows, partition_sizes, partition_families = _target_rows(finding, vm_drift)
    grouped = platform in GROUP_KIND
    notes: list[str] = []

    # Scaling groups: planned only when every member runs one family (never change what a VM is).
    group_family: dict[tuple, str] = {}
    members: dict[tuple, list[dict]] = {}
    for r in rows:
        if grouped and r["grp"]:
            members.setdefault((r["account"], r["region"], r["grp"]), []).append(r)
    for key, vms in sorted(members.items()):
        families = partition_families.get(key) or sorted({v["family"] for v in vms}, key=lambda f: (f is not None, f or ""))
        if len(families) == 1 and families[0]:
            group_family[key] = families[0]
        elif len(families) > 1:
            shown = ", ".join(f or "(no family)" for f in families)
            notes.append(f"{MIXED_GROUP} {key[2]} ({platform} {key[0]}/{key[1]}): its members run {len(families)} image "
                         f"families ({shown}); not planned: rebuilding it from one family's image would change what "
                         "the others are; a person must split the group or move it by hand")
            members[key] = []  # not a target of any plan

    # One plan never spans two organisations (approvers, RLS and audit are per organisation): the org is
    # part of each slice's key, and of the plan id when the finding's VMs belong to more than one.
    orgs_in_finding = sorted({r["org"] for r in rows})
    slices: dict[tuple[str, str, str | None], dict[str, Any]] = {}

    def slice_for(family: str | None, region: str, what: str, org: str) -> dict | None:
        if not family:
            notes.append(f"{what}: image has no golden family")
            return None
        gold = golden.get(family)
        if gold is None or gold.image_for(region) is None:
            notes.append(f"{what}: no current golden {family} image for {platform}/{region} at channel {finding.environment}")
            return None
        key = (org, family, region if gold.regional else None)
        return slices.setdefault(key, {"instances": [], "groups": {}, "vms": [], "gold": gold})

    for r in rows:
        if grouped and r["grp"]:
            continue
        s = slice_for(r["family"], r["region"], f"VM {r['asset_id']}", r["org"])
        if s is not None:
            s["instances"].append(r)
            s["vms"].append(r)
    exact, by_name = _group_facts(scaling_groups)
    for key, vms in sorted(members.items()):
        if not vms:
            continue
        account, region, name = key
        s = slice_for(group_family.get(key), region, f"group {name}", vms[0]["org"])  # one account: one org
        if s is None:
            continue
        fact = _fact_for(exact, by_name, account, region, name)
        size = _fact_size(fact)
        if size is None:
            size = partition_sizes.get(key, len(vms))
        s["groups"][name] = {"account": account, "region": region, "size": size, "fact": fact, "drifted": len(vms),
                             "location": group_location(fact, region)}
        s["vms"].extend(vms)

    created_at = now.astimezone(UTC) if now else datetime.combine(date.fromisoformat(finding.day), time(0), UTC)
    fingerprint = finding.fingerprint()
    plans = []
    for (org, family, region), s in sorted(slices.items(), key=lambda kv: (kv[0][1], kv[0][2] or "", kv[0][0])):
        gold: _Golden = s["gold"]
        instances = [
            InstanceTarget(asset_id=r["asset_id"], platform=platform, account=r["account"], region=r["region"],
                           name=r["name"] or r["asset_id"], from_image=r["image_ref"], from_family=r["family"])
            for r in s["instances"]
        ]
        groups = [
            GroupTarget(kind=GROUP_KIND[platform], platform=platform, account=g["account"], region=g["location"], name=name,
                        size=g["size"], from_family=family)
            for name, g in sorted(s["groups"].items())
        ]
        from_images = sorted(
            {(v["image_ref"], v["family"], v["image_version"]) for v in s["vms"] if v["image_ref"]}
        )
        revoked_vms = sum(1 for v in s["vms"] if v["status"] == "revoked")
        revoked = revoked_vms > 0
        count = sum(g.size for g in groups) + len(instances)
        scored = [risk_scores[v["asset_id"]] for v in s["vms"] if risk_scores and v["asset_id"] in risk_scores]
        top_risk = max(scored) if scored else None
        to_ref = gold.image_for(region or next(iter(sorted({v["region"] for v in s["vms"]}))))
        rollback = _rollback(platform, groups, s["groups"], from_images)
        plan_id = f"rp-{fingerprint[:12]}-{_slug(family)}" + (f"-{_slug(region)}" if region else "")
        if len(orgs_in_finding) > 1:
            plan_id += f"-{_slug(org)}"
        projects = {v["project"] for v in s["vms"]}
        reason = f"{finding.summary()}: {_title(family, region, gold.version, instances, s['groups'])}"
        plan = PatchPlan(
            metadata=Metadata(
                id=plan_id,
                created_at=created_at,
                created_by=created_by,
                reason=reason,
                environment=finding.environment,
                platform=platform,
                site=finding.site,
                risk_level=risk_level(finding.environment, count, revoked, top_risk),
                autonomy_mode=env.autonomy_mode,
                org=org,
                project=next(iter(projects)) if len(projects) == 1 else None,
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
                    "targets": count,
                    "revoked_targets": revoked_vms,
                    **({"risk_score": top_risk} if top_risk is not None else {}),
                },
            ),
            spec=Spec(
                targets=Targets(groups=groups, instances=instances),
                from_images=[ImageRef(image_ref=ref, family=fam, version=ver) for ref, fam, ver in from_images],
                to_image=ImageRef(image_ref=to_ref, family=family, version=gold.version),
                waves=plan_waves([t.asset_id for t in instances], [g.name for g in groups], env),
                health_gate=HealthGate(timeout_seconds=env.health_gate.timeout_seconds,
                                       min_healthy_percent=env.health_gate.min_healthy_percent,
                                       soak_seconds=env.health_gate.soak_seconds),
                max_unavailable=env.max_unavailable,
                maintenance_window=env.maintenance_window,
                rollback=rollback,
            ),
        )
        plans.append(plan.sealed())
    if skipped is not None:
        skipped.extend(notes)
    return plans


def _title(family: str, region: str | None, version: str, instances: list, groups: dict[str, dict]) -> str:
    """What the plan changes, counted as the plan counts it: whole groups by their size, plus VMs."""
    where = family + (f" in {region}" if region else "")
    size = sum(g["size"] for g in groups.values())
    total = size + len(instances)
    parts = []
    if groups:
        drifted = sum(g["drifted"] for g in groups.values())
        parts.append(f"{len(groups)} whole group(s) of {size} VM(s) ({drifted} drifted)")
    if instances:
        parts.append(f"{len(instances)} standalone VM(s)")
    return f"{total} VM(s) on {where} -> {version}: {' + '.join(parts)}"


def _rollback(platform: str, groups: list[GroupTarget], facts: dict[str, dict], from_images: list[tuple]) -> Rollback:
    single_image = from_images[0][0] if len(from_images) == 1 else None
    if not groups or platform not in GROUP_ROLLBACK:
        return Rollback(strategy=REGISTRY.get(platform).standalone_rollback, image_ref=single_image)
    strategy = GROUP_ROLLBACK[platform]
    if strategy == "previous_launch_template_version":
        versions = {
            str(v) for g in facts.values() if g.get("fact")
            for v in [g["fact"].get("launch_template_resolved_version") or g["fact"].get("launch_template_version")]
            if v is not None
        }
        return Rollback(strategy=strategy, launch_template_version=versions.pop() if len(versions) == 1 and len(groups) == 1 else None)
    return Rollback(strategy=strategy, image_ref=single_image)


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


__all__ = [
    "build_plan",
    "build_plans",
    "current_golden",
    "group_location",
    "plan_waves",
    "risk_level",
]
