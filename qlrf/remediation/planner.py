"""From a finding to patch plans (:func:`build_plans`): targets, waves, risk, rollback and ids.

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
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class PlanCandidate:
    """One plan the findings need, known by id and size before it is built.

    Building a plan materialises every target (pydantic models, then a sha256 over the canonical
    JSON): an AI ask over a million-VM partition that proposes one plan must not build the other
    seventy. ``build()`` gives the same sealed plan :func:`build_plans` returns for it."""

    id: str
    finding: Finding
    family: str
    region: str | None
    org: str
    targets: int  # as the plan counts them: whole groups by their size, plus instances
    _build: Callable[[], PatchPlan] = field(repr=False, compare=False)

    def build(self) -> PatchPlan:
        return self._build()


# Every target row of every finding, classified in the query: kind 0 = a standalone VM with a current
# golden image for its family and region, 1 = a standalone VM that has none (a note), 2 = a member of
# a scaling group (planned per group, in Python: groups are few). k_* = the slice of a kind-0 row (org,
# family, region when the golden image is regional). Kept as a temporary table of the connection: the
# candidates need only its counts; a plan's rows are read when that plan is built.
_CLASSIFIED = """
WITH rows AS (
    SELECT w.finding, v.asset_id, v.region, v."group" AS grp, v.family, v.org, s.grouped{wide}
    FROM vm_drift v
    JOIN wanted w ON w.asset_id = v.asset_id
    JOIN scopes s ON s.finding = w.finding AND s.platform = v.platform AND s.site = v.site
                 AND s.environment = v.environment
    WHERE v.platform = ANY($platforms) AND v.site = ANY($sites) AND v.environment = ANY($environments)
),
classified AS (
    SELECT r.* EXCLUDE (grouped),
           CASE WHEN r.grouped AND coalesce(r.grp, '') <> '' THEN 2
                WHEN coalesce(r.family, '') = '' OR coalesce(ge.image_ref, gs.image_ref) IS NULL THEN 1
                ELSE 0 END AS kind,
           coalesce(ge.regional, gs.regional) AS regional
    FROM rows r
    LEFT JOIN golden ge ON ge.finding = r.finding AND ge.family = r.family AND ge.region = r.region
    LEFT JOIN golden gs ON gs.finding = r.finding AND gs.family = r.family AND gs.region = '*'
)
SELECT * EXCLUDE (regional),
       CASE WHEN kind = 0 THEN org END AS k_org,
       CASE WHEN kind = 0 THEN family END AS k_family,
       CASE WHEN kind = 0 AND regional THEN region END AS k_region
FROM classified
"""
_WIDE_COLUMNS = ', {name} AS name, v.account, v.image_ref, v.image_version, v.status, v.project'
# Up to this many target ids the temp table keeps every column a plan needs (one Parquet scan in all);
# above it only ids and slice keys, and a plan's rows are read back from the partition when it is built
# (an ask over a whole million-VM day builds one plan: copying every column of 650,000 rows costs more).
WIDE_LIMIT = 200_000
_PLANNED_SQL = "CREATE TEMP TABLE planned AS " + _CLASSIFIED
_OUT_COLUMNS = ("p.finding, p.kind, p.k_org, p.k_family, p.k_region, p.asset_id, {src}.name, {src}.account, p.region, "
                "p.grp, {src}.image_ref, p.family, {src}.image_version, {src}.status, p.org, {src}.project")
_FULL_WIDE = f"SELECT {_OUT_COLUMNS.format(src='p')} FROM planned p WHERE true"
_FULL_NARROW = f"""
SELECT {_OUT_COLUMNS.format(src='v')}
FROM planned p
JOIN scopes s ON s.finding = p.finding
JOIN (SELECT v.asset_id, v.platform, v.site, v.environment, {{name}} AS name, v.account, v.image_ref, v.image_version,
             v.status, v.project FROM vm_drift v) v
  ON v.asset_id = p.asset_id AND v.platform = s.platform AND v.site = s.site AND v.environment = s.environment
WHERE v.platform = ANY($platforms) AND v.site = ANY($sites) AND v.environment = ANY($environments)
"""
_SLICE_ORDER = "k_org NULLS FIRST, k_family NULLS FIRST, k_region NULLS FIRST"
# Runs in the order the rows are read: a finding's kind-0 rows by slice then asset_id (each slice one
# contiguous run), its kind-1 and kind-2 rows by asset_id.
_RUNS_SQL = f"""
SELECT finding, kind, k_org, k_family, k_region, count(*) AS n, list(DISTINCT org) AS orgs FROM planned GROUP BY ALL
ORDER BY finding, kind, {_SLICE_ORDER}
"""
_OTHERS = " AND p.kind > 0 ORDER BY p.finding, p.kind, p.asset_id"
_INSTANCES = f" AND p.kind = 0 AND p.finding = $finding ORDER BY {_SLICE_ORDER}, p.asset_id"
_GROUPS_SQL = """
SELECT platform, account, region, "group", count(*), list(DISTINCT coalesce(family, '')) FROM vm_drift
WHERE platform = ANY($platforms) AND "group" IS NOT NULL AND coalesce(state, '') <> 'terminated'
GROUP BY ALL
"""


_GROUP_ROWS = sql.FilesMemo(32)  # (partition files, platforms) -> _GROUPS_SQL rows: see _group_rows


def _group_rows(con, vm_drift: pa.Table | str | list[str], platforms: list[str]) -> list[tuple]:
    """Every scaling group's size and families in the partition(s): a whole-partition scan whatever the
    findings' scope, so the rows are remembered per process for the very same files (path, size, mtime);
    a rewritten partition is read again. Arrow tables are always read."""
    def read() -> list[tuple]:
        return sql.rows(con, _GROUPS_SQL, {"platforms": platforms})

    if isinstance(vm_drift, pa.Table):
        return read()
    return _GROUP_ROWS.get([vm_drift] if isinstance(vm_drift, str) else list(vm_drift), tuple(platforms), read)


class _Rows:
    """The findings' classified target rows: counts per run at once, a finding's plannable rows on demand.

    ``runs[finding]`` = (kind, org, family, region, offset, n): kind-0 offsets index that finding's
    :meth:`instances` table, kind-1/2 offsets the ``others`` table (all findings, usually few rows)."""

    def __init__(self, con, params: dict, runs: dict[int, list[tuple]], others: pa.Table, many_orgs: dict[int, bool],
                 group_sizes: dict[tuple, int], group_families: dict[tuple, list]):
        self._con, self._params = con, params
        self._instances: dict[int, pa.Table] = {}
        self._finalizer = weakref.finalize(self, con.close)
        self.runs, self.others, self.many_orgs = runs, others, many_orgs
        self.group_sizes = group_sizes  # (platform, account, region, group) -> non-terminated members in the partition
        self.group_families = group_families  # the same key -> the families they run (None: no family)

    def instances(self, finding: int) -> pa.Table:
        if finding not in self._instances:
            query, params = self._params["full"] + _INSTANCES, {**self._params["bound"], "finding": finding}
            self._instances[finding] = sql.table(self._con, query, params if "$platforms" in query else {"finding": finding})
        return self._instances[finding]

    def close(self) -> None:
        self._finalizer()

    @staticmethod
    def rows(table: pa.Table, offset: int, n: int) -> list[dict]:
        return table.slice(offset, n).to_pylist() if n else []


def _fetch_rows(findings: Sequence[Finding], vm_drift: pa.Table | str | list[str], goldens: Sequence[dict[str, _Golden]]) -> _Rows:
    """One scan for every finding's target rows: filters and the target list go to DuckDB as bound
    values, so the Parquet scan reads only the findings' sites and environments."""
    con = sql.session()
    try:
        tenancy.relation(con, "vm_drift", vm_drift)  # org/project, filled from the mapping for pre-1.1 rows
        con.register("wanted", pa.table({
            "finding": pa.array([i for i, f in enumerate(findings) for _ in f.asset_ids], pa.int32()),
            "asset_id": pa.array([a for f in findings for a in f.asset_ids], pa.string()),
        }))
        con.register("scopes", pa.table({
            "finding": pa.array(range(len(findings)), pa.int32()),
            "platform": pa.array([f.platform for f in findings], pa.string()),
            "site": pa.array([f.site for f in findings], pa.string()),
            "environment": pa.array([f.environment for f in findings], pa.string()),
            "grouped": pa.array([f.platform in GROUP_KIND for f in findings], pa.bool_()),
        }))
        gold = [(i, family, region, ref, g.regional) for i, golden in enumerate(goldens)
                for family, g in golden.items() for region, ref in g.images.items()]
        con.register("golden", pa.table({
            "finding": pa.array([g[0] for g in gold], pa.int32()),
            "family": pa.array([g[1] for g in gold], pa.string()),
            "region": pa.array([g[2] for g in gold], pa.string()),
            "image_ref": pa.array([g[3] for g in gold], pa.string()),
            "regional": pa.array([g[4] for g in gold], pa.bool_()),
        }))
        columns = set(con.sql("SELECT * FROM vm_drift LIMIT 0").columns)
        params = {"platforms": sorted({f.platform for f in findings}), "sites": sorted({f.site for f in findings}),
                  "environments": sorted({f.environment for f in findings})}
        name = "v.name" if "name" in columns else "v.asset_id"
        wide = sum(len(f.asset_ids) for f in findings) <= WIDE_LIMIT
        con.execute(_PLANNED_SQL.format(wide=_WIDE_COLUMNS.format(name=name) if wide else ""), params)
        full = _FULL_WIDE if wide else _FULL_NARROW.format(name=name)
        runs: dict[int, list] = {}
        orgs: dict[int, set] = {}
        offsets: dict[int, int] = {}  # kind-0 rows: per finding; others: one table
        others_at = 0
        for finding, kind, org, family, region, n, run_orgs in sql.rows(con, _RUNS_SQL):
            finding, kind, n = int(finding), int(kind), int(n)
            if kind == 0:
                offset = offsets.get(finding, 0)
                offsets[finding] = offset + n
            else:
                offset, others_at = others_at, others_at + n
            runs.setdefault(finding, []).append((kind, org, family, region, offset, n))
            orgs.setdefault(finding, set()).update(run_orgs)
        others = (sql.table(con, full + _OTHERS, params if not wide else None) if others_at else pa.table({}))
        sizes: dict[tuple, int] = {}
        families: dict[tuple, list] = {}
        grouped = sorted({f.platform for i, f in enumerate(findings) if any(run[0] == 2 for run in runs.get(i, []))})
        if grouped:  # one scan for every platform with group members among the targets
            for platform, account, region, grp, n, fams in _group_rows(con, vm_drift, grouped):
                key = (platform, account, region, grp)
                sizes[key] = int(n)
                families[key] = sorted(f or None for f in fams) if all(fams) else [None, *sorted(f for f in fams if f)]
    except BaseException:
        con.close()
        raise
    return _Rows(con, {"full": full, "bound": params}, runs, others, {i: len(o) > 1 for i, o in orgs.items()}, sizes, families)


def plan_candidates(
    findings: Sequence[Finding],
    vm_drift: pa.Table | str | list[str],
    registry: pa.Table | Sequence[Mapping] | Mapping[str, pa.Table | Sequence[Mapping]],
    policy: RemediationPolicy,
    scaling_groups: list[dict] | Mapping[str, list[dict] | None] | None = None,
    now: datetime | None = None,
    *,
    created_by: str = "qlrf.remediation.planner",
    skipped: list[str] | None = None,
    risk_scores: Mapping[str, float] | None = None,
) -> list[PlanCandidate]:
    """Every plan the findings need, in finding order and, per finding, in :func:`build_plans` order;
    each known by id and target count, built by ``candidate.build()``.

    The findings' target rows come from `vm_drift` in one DuckDB query that classifies them (slice,
    note or group member) and sorts them into contiguous slices: no Python loop over the partition's
    VMs, and a plan's targets become Python objects only when that plan is built. With groups in
    play the partition's group sizes and families are read once for all findings. Notes are appended
    to `skipped` as :func:`build_plans` appends them, finding after finding.

    All findings must come from the same day's `vm_drift`: one platform's partition, or several
    platforms' partitions as a list of paths (one scan for all of them: an ask over every platform
    pays one query, not four). With several platforms, `registry` and `scaling_groups` are mappings
    platform -> that partition's registry (the baseline its drift was measured against) and facts.
    """
    if not findings:
        return []
    registries = registry if isinstance(registry, Mapping) else None
    rows_cache: dict[int, list[dict]] = {}  # by the registry object: platforms sharing a baseline share it

    def registry_rows(platform: str) -> list[dict]:
        source = registries[platform] if registries is not None else registry
        if id(source) not in rows_cache:
            rows_cache[id(source)] = source.to_pylist() if isinstance(source, pa.Table) else [dict(r) for r in source]
        return rows_cache[id(source)]

    golden_cache: dict[tuple[str, str], dict[str, _Golden]] = {}
    for f in findings:  # once per platform x environment (not per finding: 75 findings on a million-VM day)
        if (f.platform, f.environment) not in golden_cache:
            golden_cache[(f.platform, f.environment)] = current_golden(registry_rows(f.platform), f.platform, f.environment)
    goldens = [golden_cache[(f.platform, f.environment)] for f in findings]
    fetched = _fetch_rows(findings, vm_drift, goldens)
    facts_cache: dict[str, tuple[dict, dict]] = {}

    def facts(platform: str) -> tuple[dict, dict]:
        if platform not in facts_cache:
            given = scaling_groups.get(platform) if isinstance(scaling_groups, Mapping) else scaling_groups
            facts_cache[platform] = _group_facts(given)
        return facts_cache[platform]

    candidates: list[PlanCandidate] = []
    for index, finding in enumerate(findings):
        notes: list[str] = []
        candidates.extend(_finding_candidates(
            index, finding, fetched.runs.get(index, []), fetched, goldens[index], policy, facts(finding.platform), notes,
            now=now, created_by=created_by, risk_scores=risk_scores, many_orgs=fetched.many_orgs.get(index, False)))
        if skipped is not None:
            skipped.extend(notes)
    return candidates


def _finding_candidates(
    index: int, finding: Finding, runs: list[tuple], fetched: _Rows, golden: dict[str, _Golden], policy: RemediationPolicy,
    facts: tuple[dict, dict], notes: list[str], *, now: datetime | None, created_by: str,
    risk_scores: Mapping[str, float] | None, many_orgs: bool,
) -> list[PlanCandidate]:
    """One finding's candidates (rules in the module docstring). Notes keep the order they always had:
    mixed-family groups, then standalone VMs in asset_id order, then the other groups."""
    env = policy.for_env(finding.environment)
    platform = finding.platform

    # Scaling groups: planned only when every member runs one family (never change what a VM is).
    group_family: dict[tuple, str] = {}
    members: dict[tuple, list[dict]] = {}
    for kind, _org, _family, _region, offset, n in runs:
        if kind == 2:
            for r in fetched.rows(fetched.others, offset, n):
                members.setdefault((r["account"], r["region"], r["grp"]), []).append(r)
    for key, vms in sorted(members.items()):
        families = fetched.group_families.get((platform, *key)) or sorted({v["family"] for v in vms}, key=lambda f: (f is not None, f or ""))
        if len(families) == 1 and families[0]:
            group_family[key] = families[0]
        elif len(families) > 1:
            shown = ", ".join(f or "(no family)" for f in families)
            notes.append(f"{MIXED_GROUP} {key[2]} ({platform} {key[0]}/{key[1]}): its members run {len(families)} image "
                         f"families ({shown}); not planned: rebuilding it from one family's image would change what "
                         "the others are; a person must split the group or move it by hand")
            members[key] = []  # not a target of any plan

    # Standalone VMs without a current golden image: one note each, in asset_id order.
    for kind, _org, _family, _region, offset, n in runs:
        if kind == 1:
            table = fetched.others.slice(offset, n).select(["asset_id", "family", "region"])
            for asset_id, family, region in zip(*(c.to_pylist() for c in table.columns), strict=True):
                if not family:
                    notes.append(f"VM {asset_id}: image has no golden family")
                else:
                    notes.append(f"VM {asset_id}: no current golden {family} image for {platform}/{region} "
                                 f"at channel {finding.environment}")

    # One plan never spans two organisations (approvers, RLS and audit are per organisation): the org is
    # part of each slice's key, and of the plan id when the finding's VMs belong to more than one.
    slices: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    for kind, org, family, region, offset, n in runs:
        if kind == 0:
            slices[(org, family, region)] = {"instances": (offset, n), "groups": {}, "group_vms": [],
                                             "gold": golden[family]}
    exact, by_name = facts
    for key, vms in sorted(members.items()):
        if not vms:
            continue
        account, region, name = key
        family = group_family.get(key)
        what = f"group {name}"
        if not family:
            notes.append(f"{what}: image has no golden family")
            continue
        gold = golden.get(family)
        if gold is None or gold.image_for(region) is None:
            notes.append(f"{what}: no current golden {family} image for {platform}/{region} at channel {finding.environment}")
            continue
        s = slices.setdefault((vms[0]["org"], family, region if gold.regional else None),  # one account: one org
                              {"instances": (0, 0), "groups": {}, "group_vms": [], "gold": gold})
        fact = _fact_for(exact, by_name, account, region, name)
        size = _fact_size(fact)
        if size is None:
            size = fetched.group_sizes.get((platform, *key), len(vms))
        s["groups"][name] = {"account": account, "region": region, "size": size, "fact": fact, "drifted": len(vms),
                             "location": group_location(fact, region)}
        s["group_vms"].extend(vms)

    created_at = now.astimezone(UTC) if now else datetime.combine(date.fromisoformat(finding.day), time(0), UTC)
    fingerprint = finding.fingerprint()
    out = []
    for (org, family, region), s in sorted(slices.items(), key=lambda kv: (kv[0][1], kv[0][2] or "", kv[0][0])):
        plan_id = f"rp-{fingerprint[:12]}-{_slug(family)}" + (f"-{_slug(region)}" if region else "")
        if many_orgs:
            plan_id += f"-{_slug(org)}"
        count = sum(g["size"] for g in s["groups"].values()) + s["instances"][1]

        def build(org=org, family=family, region=region, s=s, plan_id=plan_id) -> PatchPlan:
            return _plan(finding, s, org, family, region, plan_id, fetched.rows(fetched.instances(index), *s["instances"]),
                         env, created_at, created_by, risk_scores)

        out.append(PlanCandidate(plan_id, finding, family, region, org, count, build))
    return out


def _plan(finding: Finding, s: dict, org: str, family: str, region: str | None, plan_id: str, instance_rows: list[dict],
          env: EnvironmentPolicy, created_at: datetime, created_by: str,
          risk_scores: Mapping[str, float] | None) -> PatchPlan:
    """The sealed plan of one slice: its targets, waves, risk and rollback."""
    platform = finding.platform
    fingerprint = finding.fingerprint()
    gold: _Golden = s["gold"]
    vms = instance_rows + s["group_vms"]
    instances = [
        InstanceTarget(asset_id=r["asset_id"], platform=platform, account=r["account"], region=r["region"],
                       name=r["name"] or r["asset_id"], from_image=r["image_ref"], from_family=r["family"])
        for r in instance_rows
    ]
    groups = [
        GroupTarget(kind=GROUP_KIND[platform], platform=platform, account=g["account"], region=g["location"], name=name,
                    size=g["size"], from_family=family)
        for name, g in sorted(s["groups"].items())
    ]
    from_images = sorted({(v["image_ref"], v["family"], v["image_version"]) for v in vms if v["image_ref"]})
    revoked_vms = sum(1 for v in vms if v["status"] == "revoked")
    revoked = revoked_vms > 0
    count = sum(g.size for g in groups) + len(instances)
    scored = [risk_scores[v["asset_id"]] for v in vms if risk_scores and v["asset_id"] in risk_scores]
    top_risk = max(scored) if scored else None
    to_ref = gold.image_for(region or next(iter(sorted({v["region"] for v in vms}))))
    rollback = _rollback(platform, groups, s["groups"], from_images)
    projects = {v["project"] for v in vms}
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
                "target_vms": len(vms),
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
    return plan.sealed()


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
    return [c.build() for c in plan_candidates([finding], vm_drift, registry, policy, scaling_groups, now,
                                               created_by=created_by, skipped=skipped, risk_scores=risk_scores)]


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
    "PlanCandidate",
    "plan_candidates",
    "group_location",
    "plan_waves",
    "risk_level",
]
