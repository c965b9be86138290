"""The tenancy model: organisation -> project -> environment, mapped from inventory scopes.

Why a file and not tags: a tenant id taken from a VM tag or an event could be forged by whoever can
tag a VM; the scope (AWS account, Azure subscription, GCP project, vCenter) is what the connector was
given credentials for, so it is the one fact a tenant cannot choose. The mapping lives in
``policy/tenancy.yaml`` (``QLRF_TENANCY_FILE`` overrides), is validated on load, and every scope maps
to exactly one (organisation, project). A scope listed nowhere resolves to :data:`UNASSIGNED`, never to
a real organisation, so a new account shows up in ``qlrf tenancy check`` instead of leaking into a tenant.

Readers of the warehouse use :func:`relation` to see any table that has ``platform`` and ``account``
with ``org``/``project`` filled: rows written before contract 1.1 (no such columns) and rows written
while a scope was unmapped get the mapping's answer at read time; rows that carry an org keep it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from qlrf.filememo import FilesMemo
from qlrf.platforms import PLATFORMS
from qlrf.settings import project_root

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

UNASSIGNED = "unassigned"
DEFAULT_FILE = project_root() / "policy" / "tenancy.yaml"
ENV_VAR = "QLRF_TENANCY_FILE"

_TOP_KEYS = {"version", "organisations"}
_ORG_KEYS = {"name", "projects"}
_PROJECT_KEYS = {"environments", "scopes"}


class TenancyError(ValueError):
    """The tenancy file is missing or wrong; the message names the file, the key and the problem."""


@dataclass(frozen=True)
class Project:
    org: str
    name: str
    environments: tuple[str, ...]
    scopes: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Organisation:
    id: str
    name: str
    projects: Mapping[str, Project]


@dataclass(frozen=True)
class Tenancy:
    """A validated tenancy file. ``index`` maps (platform, lower-case scope) to (org, project)."""

    source: str
    organisations: Mapping[str, Organisation]
    index: Mapping[tuple[str, str], tuple[str, str]] = field(repr=False)

    @property
    def orgs(self) -> tuple[str, ...]:
        """Every organisation the file defines (sorted); ``unassigned`` is not one of them."""
        return tuple(sorted(self.organisations))

    def resolve(self, platform: str, scope: str | None) -> tuple[str, str]:
        """(org, project) owning `scope` on `platform`; (UNASSIGNED, UNASSIGNED) when it is not mapped."""
        key = (str(platform).lower(), str(scope or "").strip().lower())
        return self.index.get(key, (UNASSIGNED, UNASSIGNED))

    def stamp(self, rows: Iterable[dict]) -> list[tuple[str, str]]:
        """Set ``org`` and ``project`` on inventory rows from their (platform, account); returns the
        unmapped (platform, scope) pairs, sorted, so the caller can warn about them by name."""
        unmapped: set[tuple[str, str]] = set()
        for row in rows:
            org, project = self.resolve(row["platform"], row.get("account"))
            row["org"], row["project"] = org, project
            if org == UNASSIGNED:
                unmapped.add((row["platform"], str(row.get("account") or "")))
        return sorted(unmapped)

    def scope_table(self) -> pa.Table:
        """The mapping as a relation (platform, scope, org, project) for SQL joins: values, never SQL text."""
        import pyarrow as pa

        keys = sorted(self.index)
        # from_arrays, not pa.table({...}): the latter asks pandas whether the dict is a DataFrame,
        # importing it (~0.2 s of every fresh scoring process that reads a 1.0 partition)
        return pa.Table.from_arrays([
            pa.array([k[0] for k in keys], pa.string()),
            pa.array([k[1] for k in keys], pa.string()),
            pa.array([self.index[k][0] for k in keys], pa.string()),
            pa.array([self.index[k][1] for k in keys], pa.string()),
        ], names=["platform", "scope", "org", "project"])

    def empty_orgs(self, seen: Iterable[tuple[str, str]]) -> list[str]:
        """Organisations none of whose scopes appear in `seen` (platform, scope) pairs."""
        owners = {self.resolve(p, s)[0] for p, s in seen}
        return [o for o in self.orgs if o not in owners]


def _fail(where: str, problem: str) -> TenancyError:
    return TenancyError(f"{where}: {problem}")


def _unknown_keys(where: str, got: Mapping, allowed: set[str]) -> None:
    extra = sorted(set(got) - allowed)
    if extra:
        raise _fail(where, f"unknown key(s) {', '.join(map(repr, extra))} (allowed: {', '.join(sorted(allowed))})")


def _ident(where: str, value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise _fail(where, f"{what} must be a non-empty string without surrounding spaces, got {value!r}")
    if value.lower() in (UNASSIGNED, "*"):
        raise _fail(where, f"{what} {value!r} is reserved")
    return value


def parse(data: object, source: str) -> Tenancy:
    """Validate the parsed YAML `data`; `source` (the file) is named in every error."""
    if not isinstance(data, Mapping):
        raise _fail(source, "expected a mapping with 'version' and 'organisations'")
    _unknown_keys(source, data, _TOP_KEYS)
    if data.get("version") != 1:
        raise _fail(f"{source}: version", f"unsupported version {data.get('version')!r} (expected 1)")
    raw_orgs = data.get("organisations")
    if not isinstance(raw_orgs, Mapping) or not raw_orgs:
        raise _fail(f"{source}: organisations", "missing or empty: at least one organisation is required")
    orgs: dict[str, Organisation] = {}
    index: dict[tuple[str, str], tuple[str, str]] = {}
    where_mapped: dict[tuple[str, str], str] = {}
    seen_lower: dict[str, str] = {}
    for org_id, raw in raw_orgs.items():
        where = f"{source}: organisations.{org_id}"
        _ident(where, org_id, "organisation id")
        if org_id.lower() in seen_lower:
            raise _fail(where, f"organisation ids compare case-insensitively; {seen_lower[org_id.lower()]!r} is already defined")
        seen_lower[org_id.lower()] = org_id
        if not isinstance(raw, Mapping):
            raise _fail(where, "expected a mapping with 'projects'")
        _unknown_keys(where, raw, _ORG_KEYS)
        raw_projects = raw.get("projects")
        if not isinstance(raw_projects, Mapping) or not raw_projects:
            raise _fail(f"{where}.projects", "missing or empty: an organisation needs at least one project")
        projects: dict[str, Project] = {}
        for project_id, praw in raw_projects.items():
            pwhere = f"{where}.projects.{project_id}"
            _ident(pwhere, project_id, "project id")
            if not isinstance(praw, Mapping):
                raise _fail(pwhere, "expected a mapping with 'environments' and 'scopes'")
            _unknown_keys(pwhere, praw, _PROJECT_KEYS)
            envs = praw.get("environments", [])
            if not isinstance(envs, list) or not all(isinstance(e, str) and e for e in envs):
                raise _fail(f"{pwhere}.environments", "expected a list of environment names")
            raw_scopes = praw.get("scopes")
            if not isinstance(raw_scopes, Mapping) or not raw_scopes:
                raise _fail(f"{pwhere}.scopes", "missing or empty: map at least one platform to its scopes")
            scopes: dict[str, tuple[str, ...]] = {}
            for platform, values in raw_scopes.items():
                swhere = f"{pwhere}.scopes.{platform}"
                if platform not in PLATFORMS:
                    raise _fail(swhere, f"unknown platform {platform!r} (expected one of {', '.join(PLATFORMS)})")
                if not isinstance(values, list) or not values:
                    raise _fail(swhere, "expected a non-empty list of scopes")
                for value in values:
                    if not isinstance(value, str | int) or not str(value).strip():
                        raise _fail(swhere, f"a scope must be a non-empty string, got {value!r}")
                    key = (platform, str(value).strip().lower())
                    if key in index:
                        raise _fail(swhere, f"scope {value!r} is mapped twice (also at {where_mapped[key]})")
                    index[key] = (org_id, project_id)
                    where_mapped[key] = swhere
                scopes[platform] = tuple(str(v).strip() for v in values)
            projects[project_id] = Project(org_id, project_id, tuple(envs), scopes)
        orgs[org_id] = Organisation(org_id, str(raw.get("name") or org_id), projects)
    return Tenancy(source=source, organisations=orgs, index=index)


def path_from(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ if env is None else env
    return Path(env.get(ENV_VAR) or DEFAULT_FILE)


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Tenancy:
    """The tenancy file at `path`, else ``$QLRF_TENANCY_FILE``, else ``policy/tenancy.yaml``; validated."""
    file = path_from(path, env)
    try:
        data = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise TenancyError(f"{file}: tenancy file not found (set {ENV_VAR} or create it)") from None
    except (OSError, yaml.YAMLError) as exc:
        raise TenancyError(f"{file}: {str(exc).splitlines()[0]}") from None
    return parse(data, str(file))


@functools.lru_cache(maxsize=8)
def _cached(path: str, mtime_ns: int) -> Tenancy:
    return load(path)


def current(env: Mapping[str, str] | None = None) -> Tenancy:
    """The configured tenancy, re-read when the file changes (stages and pages call this per run)."""
    file = path_from(None, env)
    try:
        mtime = file.stat().st_mtime_ns
    except OSError:
        return load(file)  # raises the clear "not found" error
    return _cached(str(file), mtime)


@dataclass(frozen=True)
class CheckResult:
    """What `qlrf tenancy check` found: scopes in the inventory the file does not map (with VM counts),
    organisations and projects with no VM in it."""

    day: str | None
    vms: int
    unmapped: tuple[tuple[str, str, int], ...]  # (platform, scope, VMs)
    empty_orgs: tuple[str, ...]
    empty_projects: tuple[str, ...]  # "org/project"
    by_org: Mapping[str, int] = field(default_factory=dict)
    # VMs whose environment is not one their project lists: ("org/project", environment, VMs); a warning
    other_environments: tuple[tuple[str, str, int], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.unmapped

    def lines(self, source: str) -> list[str]:
        out = [f"tenancy file {source}: valid"]
        if self.day is None:
            return [*out, "no inventory partition yet: nothing to check against (run `qlrf run` first)"]
        out.append(f"inventory {self.day}: {self.vms} VM(s); " + ", ".join(f"{o} {n}" for o, n in sorted(self.by_org.items())))
        for platform, scope, vms in self.unmapped:
            out.append(f"UNMAPPED {platform} scope {scope!r}: {vms} VM(s) resolve to '{UNASSIGNED}' (add it to a project)")
        for org in self.empty_orgs:
            out.append(f"warning: organisation {org!r} has no VM in the inventory")
        for project in self.empty_projects:
            out.append(f"warning: project {project!r} has no VM in the inventory")
        for project, environment, vms in self.other_environments:
            out.append(f"warning: {vms} VM(s) of project {project!r} are in environment {environment!r}, "
                       "which the project does not list")
        if self.ok:
            out.append("every VM has an organisation")
        return out


def check(tenancy: Tenancy, scopes: Mapping[tuple[str, str], int], day: str | None = None,
          environments: Mapping[tuple[str, str, str], int] | None = None) -> CheckResult:
    """Check `tenancy` against the inventory's (platform, account) -> VM counts and, when given,
    (platform, account, environment) -> VM counts (organisation -> project -> environment)."""
    unmapped, by_org, projects_seen = [], {}, set()
    for (platform, scope), vms in sorted(scopes.items()):
        org, project = tenancy.resolve(platform, scope)
        by_org[org] = by_org.get(org, 0) + vms
        if org == UNASSIGNED:
            unmapped.append((platform, scope, vms))
        else:
            projects_seen.add((org, project))
    empty_projects = tuple(f"{o.id}/{p}" for o in tenancy.organisations.values() for p in o.projects
                           if (o.id, p) not in projects_seen and o.id in by_org)
    other: dict[tuple[str, str], int] = {}
    for (platform, scope, environment), vms in sorted((environments or {}).items()):
        org, project = tenancy.resolve(platform, scope)
        listed = tenancy.organisations[org].projects[project].environments if org != UNASSIGNED else ()
        if listed and environment not in listed:
            key = (f"{org}/{project}", environment)
            other[key] = other.get(key, 0) + vms
    return CheckResult(day, sum(scopes.values()), tuple(unmapped), tuple(o for o in tenancy.orgs if o not in by_org),
                       empty_projects, by_org, tuple((p, e, n) for (p, e), n in sorted(other.items())))


# --------------------------------------------------------------------------- SQL helpers for readers


_FILE_FACTS = FilesMemo(64)  # Parquet files -> (columns, org/project never null): see relation


def relation(con: duckdb.DuckDBPyConnection, name: str, source: pa.Table | str | list[str],
             tenancy: Tenancy | None = None) -> None:
    """Register `source` (Arrow table, Parquet path or list of paths) as `name` with ``org`` and ``project`` filled.

    A table that has them keeps non-null values; a 1.0 partition (no such columns) or a null gets the
    mapping's answer for its (platform, account), else UNASSIGNED. A table without ``account`` is
    registered unchanged when it already has ``org``; otherwise it has nothing to resolve from and
    gets UNASSIGNED (so a scoped reader sees none of it rather than all of it)."""
    from qlrf import sql

    raw = f"{sql.identifier(name)}__raw"
    sql.relation(con, raw, source)  # a Parquet path, an Arrow table or a DuckDB relation

    def facts() -> tuple[frozenset[str], bool]:
        cols = frozenset(con.sql(f"SELECT * FROM {raw} LIMIT 0").columns)
        return cols, {"org", "project"} <= cols and _never_null(source, ("org", "project"))

    # Parquet files: their columns and null counts do not change while the files stay the same (an AI
    # ask registers the day twice; each look at the footers and the schema cost ~8 ms at 1M VMs).
    paths = [source] if isinstance(source, str) else source if isinstance(source, list) else None
    columns, filled = _FILE_FACTS.get(paths, None, facts) if paths and "://" not in paths[0] else facts()
    has_org, has_project = "org" in columns, "project" in columns
    if filled:
        con.register(name, con.table(raw))  # a 1.1 partition as the stage wrote it: nothing to fill, no join
        return
    tenancy = tenancy or current()
    _register_scopes(con, f"{name}__scopes", tenancy)
    if "account" not in columns or "platform" not in columns:
        org = "s.org" if has_org else f"'{UNASSIGNED}'"
        project = "s.project" if has_project else f"'{UNASSIGNED}'"
        join = ""
    else:
        org = f"coalesce({'s.org, ' if has_org else ''}m.org, '{UNASSIGNED}')"
        project = f"coalesce({'s.project, ' if has_project else ''}m.project, '{UNASSIGNED}')"
        join = f" LEFT JOIN {name}__scopes m ON m.platform = lower(s.platform) AND m.scope = lower(trim(s.account))"
    keep = "s.* EXCLUDE (" + ", ".join(c for c, has in (("org", has_org), ("project", has_project)) if has) + ")" \
        if (has_org or has_project) else "s.*"
    con.register(name, con.sql(f"SELECT {keep}, {org} AS org, {project} AS project FROM {raw} s{join}"))


def _register_scopes(con: duckdb.DuckDBPyConnection, name: str, tenancy: Tenancy) -> None:
    """The mapping as a temporary DuckDB table, filled through parameters (values, never SQL text).

    Not through Arrow: building even a small Arrow array asks pandas whether its input is a pandas
    object, importing it (~0.2 s of every fresh scoring process that reads a 1.0 partition)."""
    from qlrf import sql

    table = sql.identifier(name)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (platform VARCHAR, scope VARCHAR, org VARCHAR, project VARCHAR)")
    rows = [(platform, scope, org, project) for (platform, scope), (org, project) in sorted(tenancy.index.items())]
    if rows:
        con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", rows)


def _never_null(source: object, columns: tuple[str, ...]) -> bool:
    """True when `source` certainly has no null in `columns`, read from Arrow's null counts or the Parquet
    footer's statistics (no data scan); False when unsure, so the caller fills."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(source, list):  # several partitions read as one relation
        return bool(source) and all(_never_null(part, columns) for part in source)
    try:
        if isinstance(source, pa.Table):
            return all(source.column(c).null_count == 0 for c in columns)
        if isinstance(source, str) and "://" not in source:
            meta = pq.ParquetFile(source).metadata
            index = {meta.schema.column(i).name: i for i in range(meta.num_columns)}
            for g in range(meta.num_row_groups):
                for c in columns:
                    stats = meta.row_group(g).column(index[c]).statistics
                    if stats is None or not stats.has_null_count or stats.null_count:
                        return False
            return True
    except (OSError, KeyError, pa.ArrowException):
        return False
    return False


def org_predicate(orgs: Collection[str] | None, column: str = "org") -> tuple[str, dict[str, list[str]]]:
    """(SQL predicate, params) keeping rows of `orgs`; None means unrestricted (system use)."""
    if orgs is None:
        return "true", {}
    return f"list_contains($scope_orgs::VARCHAR[], {column})", {"scope_orgs": sorted(set(orgs))}


def filter_rows(rows: Iterable[Mapping], orgs: Collection[str] | None, tenancy: Tenancy | None = None) -> list:
    """Python-side scoping for readers that hold rows, not SQL: keeps rows whose org (or resolved
    (platform, account)) is in `orgs`. A row with neither is dropped for a restricted reader."""
    rows = list(rows)
    if orgs is None:
        return rows
    allowed = set(orgs)
    out = []
    for row in rows:
        org = row.get("org")
        if not org and row.get("platform") and row.get("account"):
            org = (tenancy or current()).resolve(row["platform"], row["account"])[0]
        if org in allowed:
            out.append(row)
    return out


__all__ = [
    "DEFAULT_FILE", "ENV_VAR", "UNASSIGNED", "CheckResult", "Organisation", "Project", "Tenancy", "TenancyError",
    "check", "current", "filter_rows", "load", "org_predicate", "parse", "path_from", "relation",
]
