"""Scope resolution (issue 10 item 6c): what a proposal's scope means in the warehouse, and whether
the user's words asked for that much.

* :func:`resolve` reads one warehouse day (the newest materialised unless given; never the clock)
  with fixed SQL and bound parameters over ``vm_drift``: unknown sites, platforms without a
  partition and asset ids that are not in the scope are *named*; the concrete targets are counted
  (for ``remediate_drift`` the drifted VMs in scope, ``behind`` or ``revoked``; for every other
  action the VMs in scope), terminated VMs never count. ``target_count`` is filled so the rule risk
  and the policy's size limits use the real size. An empty scope is a problem: no task.
* :func:`asked_scope` reads what the *intent* names (sites known to the warehouse, environments,
  platforms, asset-id-looking words) and :func:`widening` says where a proposal is wider than that:
  a dropped filter, another value, asset ids outside what was asked. A model (or text hidden in a
  tool result) can therefore narrow a request, never widen it.

Organisations (issue 14): ``vm_drift`` carries ``org`` (filled from the tenancy mapping for rows
written before contract 1.1), so a scope with ``org`` resolves only that organisation's VMs; the
orchestrator sets it to the asker's organisation.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import pyarrow as pa

from qlrf import sql
from qlrf.ai.taskspec import Scope
from qlrf.platforms import PLATFORMS, REGISTRY
from qlrf.tenancy import model as tenancy
from qlrf.tenancy import scoping
from qlrf.warehouse import Warehouse

SCOPE_STEP = "scope"
TABLE = "vm_drift"
DRIFTED = ("behind", "revoked")
SHOWN = 5  # ids named in a message before "... and N more"
FREE_TEXT_LIMIT = 20_000  # distinct owner/group values screened per scope (a scope has far fewer)
_SITES = sql.FilesMemo(64)  # (partition files, orgs) -> their sites: see DayView.sites
_FREE_TEXT = sql.FilesMemo(8)  # (partition files, orgs) -> free-text index: see DayView._free_text_index

ENVIRONMENT_WORDS: dict[str, str] = {
    "dev": "dev", "development": "dev", "staging": "staging", "stage": "staging", "stg": "staging",
    "prod": "prod", "production": "prod", "prd": "prod",
}
# A platform is named by its registry name or any word of its display name ("google" in "Google Cloud").
PLATFORM_WORDS: dict[str, str] = {
    word: p.name for p in REGISTRY for word in (p.name, *p.display_name.lower().split()) if word != "cloud"
}
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*[A-Za-z0-9]|[A-Za-z0-9]")


class ScopeError(ValueError):
    """The scope cannot be resolved (no warehouse day): the message names the table and day."""


@dataclass(frozen=True)
class Resolved:
    """A scope resolved against one day: the scope with ``target_count``, and what was wrong with it."""

    scope: Scope
    day: str
    platforms: tuple[str, ...]  # platforms with targets in the scope (the only ones worth planning)
    vms: int  # VMs in scope (terminated ones left out)
    drifted: int  # of which behind or revoked
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def newest_day(wh: Warehouse, *, on_or_before: date | None = None) -> str:
    """The newest materialised ``vm_drift`` day (not after ``on_or_before`` when given)."""
    days = [d for d in wh.dates(TABLE) if on_or_before is None or d <= on_or_before.isoformat()]
    if not days:
        raise ScopeError(f"{TABLE}: no day has been materialised{'' if on_or_before is None else f' on or before {on_or_before}'}"
                         ": run `qlrf run` first")
    return days[-1]


# A scope's filters; _FILTER adds "never a terminated VM" (the free-text index holds none to begin with).
_SCOPE_FILTER = ("($site::VARCHAR IS NULL OR site = $site) AND ($environment::VARCHAR IS NULL OR environment = $environment) "
                 "AND ($platform::VARCHAR IS NULL OR platform = $platform) "
                 "AND (len($ids::VARCHAR[]) = 0 OR list_contains($ids::VARCHAR[], asset_id)) "
                 "AND ($org::VARCHAR IS NULL OR lower(org) = lower($org))")
_FILTER = _SCOPE_FILTER + " AND coalesce(state, '') <> 'terminated'"


class DayView:
    """One day of ``vm_drift`` (every platform partition present) behind one DuckDB connection.

    One cursor of the process's DuckDB database per question (``sql.session``: ~0.5 ms, where a new
    database took ~12 ms of every ask); its views are its own.
    """

    def __init__(self, wh: Warehouse, day: str, orgs: Collection[str] | None = None):
        """`orgs`: only those organisations' VMs are seen at all (None: every VM; a scope's org still filters)."""
        self.day = day
        self.present = tuple(p for p in PLATFORMS if wh.exists(TABLE, day, p))
        self.con = sql.session()
        self._files = [wh.source(TABLE, day, p) for p in self.present]
        self._orgs = None if orgs is None else tuple(sorted(orgs))
        if self.present:  # every platform partition as one relation: one scan per query, not one per platform
            if orgs is None:
                tenancy.relation(self.con, "t", self._files)
            else:
                sql.relation(self.con, "t_files", self._files)
                scoping.restrict(self.con, "t_files", "t", TABLE, orgs)
        self._sites: list[str] | None = None

    def sites(self) -> list[str]:
        """The sites with VMs that day (what an intent or a proposal may name).

        Remembered per process for the very same partition files (path, size, mtime): every ask names
        sites, and a day's files do not change under a question; a re-materialised day is read again."""
        if self._sites is None:
            self._sites = list(_SITES.get(self._files, self._orgs, lambda: [] if not self.present else sorted(
                sql.table(self.con, "SELECT DISTINCT site FROM t WHERE site IS NOT NULL").column("site").to_pylist())))
        return self._sites

    def free_text(self, scope: Scope, limit: int = FREE_TEXT_LIMIT) -> list[tuple[str, str, str]]:
        """(asset id, field, value) of the distinct free-text fields (owner, group) of the VMs in ``scope``.

        Tags and names are written by whoever owns a VM, so an instruction hidden there must be seen
        before a task acts on that VM, whether or not any tool result showed it. Distinct values are
        few even in a large scope; the first VM carrying each is named so a human can clean it.

        A scope of filters (no named VMs) reads the day's free-text index (:meth:`_free_text_index`):
        a whole-fleet scope otherwise rescans every VM of the day on every ask (~85 ms at 1M VMs)."""
        params = {"site": scope.site, "environment": scope.environment, "platform": scope.platform,
                  "ids": list(scope.asset_ids), "org": scope.org, "limit": limit}
        if scope.asset_ids or not self.present:
            return self._free_text_direct(params)
        sql.relation(self.con, "free_text_index", self._free_text_index())
        rows = sql.table(self.con, "SELECT field, value, min(asset_id) AS asset_id FROM free_text_index WHERE "
                                   + _SCOPE_FILTER
                                   + " GROUP BY field, value ORDER BY field, value LIMIT $limit", params).to_pylist()
        return [(r["asset_id"], r["field"], r["value"]) for r in rows]

    def _free_text_direct(self, params: dict) -> list[tuple[str, str, str]]:
        rows = sql.table(self.con, "SELECT field, value, min(asset_id) AS asset_id FROM ("
                                   "SELECT asset_id, unnest(['owner', 'group']) AS field, unnest([owner, \"group\"]) AS value "
                                   "FROM t WHERE " + _FILTER +
                                   ") WHERE value IS NOT NULL AND value <> '' GROUP BY field, value "
                                   "ORDER BY field, value LIMIT $limit", params).to_pylist()
        return [(r["asset_id"], r["field"], r["value"]) for r in rows]

    def _free_text_index(self) -> pa.Table:
        """Every distinct owner/group value of the day's non-terminated VMs per platform x site x
        environment x organisation, with the first VM carrying it there: a few thousand rows for a
        million VMs, built by one scan and remembered per process for the very same partition files
        (path, size, mtime), like :meth:`sites`. A scope is then a WHERE over it; the first VM of a
        value over the scope is the least of its slices' first VMs, so the answer is the direct one."""
        return _FREE_TEXT.get(self._files, self._orgs, lambda: sql.table(
            self.con, "SELECT platform, site, environment, org, field, value, min(asset_id) AS asset_id FROM ("
                      "SELECT asset_id, platform, site, environment, org, unnest(['owner', 'group']) AS field, "
                      "unnest([owner, \"group\"]) AS value FROM t WHERE coalesce(state, '') <> 'terminated'"
                      ") WHERE value IS NOT NULL AND value <> '' GROUP BY ALL"))

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> DayView:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _named(ids: Sequence[str]) -> str:
    more = f" and {len(ids) - SHOWN} more" if len(ids) > SHOWN else ""
    return ", ".join(ids[:SHOWN]) + more


def resolve(view: DayView, scope: Scope, task_type: str) -> Resolved:
    """``scope`` against the day of ``view`` (see the module docstring)."""
    day = view.day
    if not view.present or (scope.platform and scope.platform not in view.present):
        where = f"platform {scope.platform!r}" if scope.platform else "any platform"
        return Resolved(scope, day, (), 0, 0, (f"scope.platform: no {TABLE} partition for {where} on {day}",))
    problems: list[str] = []
    if scope.site is not None and scope.site not in view.sites():
        problems.append(f"scope.site: unknown site {scope.site!r} on {day} (known: {', '.join(view.sites()) or 'none'})")
    params = {"site": scope.site, "environment": scope.environment, "platform": scope.platform,
              "ids": list(scope.asset_ids), "org": scope.org, "drifted": list(DRIFTED)}
    rows = sql.table(view.con, "SELECT platform, count(*) AS vms, "
                               "count(*) FILTER (WHERE list_contains($drifted::VARCHAR[], status)) AS drifted "
                               f"FROM t WHERE {_FILTER} GROUP BY platform ORDER BY platform", params).to_pylist()
    if scope.asset_ids:
        params.pop("drifted")
        found = set(sql.table(view.con, f"SELECT asset_id FROM t WHERE {_FILTER}", params).column("asset_id").to_pylist())
        missing = [a for a in scope.asset_ids if a not in found]
        if missing:
            problems.append(f"scope.asset_ids: {len(missing)} not in the scope on {day} (unknown, terminated or outside "
                            f"its site/environment/platform/organisation): {_named(missing)}")
    vms, drifted = sum(int(r["vms"]) for r in rows), sum(int(r["drifted"] or 0) for r in rows)
    remediate = task_type == "remediate_drift"
    targets = drifted if remediate else vms
    platforms = tuple(r["platform"] for r in rows if (r["drifted"] if remediate else r["vms"]))
    if not problems and targets == 0:
        what = "drifted VM (behind or revoked)" if remediate else "VM"
        problems.append(f"scope: no {what} matches {describe(scope)} on {day}: an empty scope creates no task")
    return Resolved(scope.model_copy(update={"target_count": targets}), day, platforms, vms, drifted, tuple(problems))


def describe(scope: Scope) -> str:
    """The scope in words, e.g. ``site syd1, environment dev, every platform``."""
    return ", ".join([
        f"site {scope.site}" if scope.site else "every site",
        f"environment {scope.environment}" if scope.environment else "every environment",
        f"platform {scope.platform}" if scope.platform else "every platform",
        *([f"{len(scope.asset_ids)} named asset(s)"] if scope.asset_ids else []),
    ])


# --- what the intent asked ------------------------------------------------------------------------


@dataclass(frozen=True)
class Asked:
    """The filters the intent's own words name (empty sets: the intent did not narrow that dimension)."""

    sites: frozenset[str] = frozenset()
    environments: frozenset[str] = frozenset()
    platforms: frozenset[str] = frozenset()
    words: frozenset[str] = frozenset()  # every token, lower-cased: asset ids are checked against these


def asked_scope(intent: str, sites: Iterable[str]) -> Asked:
    """Sites (of ``sites``), environments and platforms the intent names, by whole word, any case."""
    tokens = [t.lower().strip(".:/-") for t in _TOKEN.findall(intent)]
    known = {s.lower(): s for s in sites}
    return Asked(
        sites=frozenset(known[t] for t in tokens if t in known),
        environments=frozenset(ENVIRONMENT_WORDS[t] for t in tokens if t in ENVIRONMENT_WORDS),
        platforms=frozenset(PLATFORM_WORDS[t] for t in tokens if t in PLATFORM_WORDS),
        words=frozenset(tokens),
    )


def widening(scope: Scope, asked: Asked, *, assets_must_be_named: bool = False) -> list[str]:
    """Where ``scope`` is wider than (or other than) what the intent asked; empty when it is not.

    ``assets_must_be_named``: every asset id must appear in the intent itself (used when tool results
    were flagged, so ids cannot have come from injected data).
    """
    problems = []
    for field, wanted in (("site", asked.sites), ("environment", asked.environments), ("platform", asked.platforms)):
        value = getattr(scope, field)
        if not wanted:
            continue
        named = " or ".join(sorted(wanted))
        if value is None:
            problems.append(f"scope.{field}: the intent named {named}, the proposal drops that filter (every {field})")
        elif value not in wanted:
            problems.append(f"scope.{field}: {value!r} is not what the intent named ({named})")
    if assets_must_be_named:
        unnamed = [a for a in scope.asset_ids if a.lower() not in asked.words]
        if unnamed:
            problems.append(f"scope.asset_ids: {len(unnamed)} asset(s) the intent did not name, proposed while tool "
                            f"results were flagged: {_named(unnamed)}")
    return problems


__all__ = [
    "DRIFTED",
    "SCOPE_STEP",
    "Asked",
    "Resolved",
    "ScopeError",
    "asked_scope",
    "describe",
    "DayView",
    "newest_day",
    "resolve",
    "widening",
]
