"""Scope planning for discovery fan-out: which independent units one platform partition splits into,
how they are grouped into steps, how a connector configuration is narrowed to a group, and how the
groups' results merge back into the one result serial discovery gives. Plain Python, no Dagster.

A scope is the unit that fails on its own (the connectors' own unit, qlrf/inventory/connectors/common):
an AWS account (every region of it), an Azure subscription, a GCP project, a vCenter; for export files,
one group of manifest files (the un-hinted files normalised together, then each file that carries its
own account/region hint), exactly the groups `sources.from_manifest` normalises one by one.

Scopes are grouped into batches of at most `per_step` scopes; each batch is one step (one Dagster op
invocation, hence one Celery task or Kubernetes job with a distributed executor), and inside a step
the connector still runs its scopes concurrently on its own thread pool. Merging the batches' results
in plan order, then rejecting duplicate ids once (as `from_manifest` does), gives the serial result.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType
from typing import TYPE_CHECKING, Any

from qlrf.envparse import redact_credentials
from qlrf.inventory.columnar import Discovered
from qlrf.platforms import REGISTRY, Registry

if TYPE_CHECKING:
    from qlrf.tenancy.model import Tenancy

#: Scopes per step when nothing is configured (QLRF_SCOPES_PER_STEP): 500 accounts -> 20 steps.
DEFAULT_SCOPES_PER_STEP = 25


def scope_module(platform: str, registry: Registry = REGISTRY) -> ModuleType | None:
    """The connector's config module when it says how to split discovery (SCOPE_KIND, scope_keys,
    narrow), found through the platform's registry record; None: the platform runs as one whole scope."""
    record = registry.get(platform)  # an unknown platform fails here, naming the known ones
    name = f"{record.connector}.config"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # the module exists and its own import failed: that is a bug to see
            raise
        return None
    return module if all(hasattr(module, a) for a in ("SCOPE_KIND", "scope_keys", "narrow")) else None


@dataclass(frozen=True)
class Scope:
    """One independent unit of discovery. `key` is what the connector configuration names it by (a role
    ARN or "default", a subscription id, a project id, a vCenter label) or, for files, the group name;
    `files` carries the manifest entries of a file scope."""

    platform: str
    kind: str  # account | subscription | project | vcenter | files | whole
    key: str
    files: tuple[Mapping[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """How the scope is named in failed_scopes rows and log lines: "<platform>:<key>"."""
        return f"{self.platform}:{self.key}"


@dataclass(frozen=True)
class ScopeBatch:
    """The scopes one step discovers, with everything the step needs that must be the same for every
    step of the partition (the source, the manifest directory, one discovery timestamp)."""

    platform: str
    index: int
    source: str  # live | sample | files:<dir>
    scopes: tuple[Scope, ...]
    discovered_at: datetime
    directory: str | None = None  # manifest directory of file scopes
    total: int = 1  # batches in the plan: a lone batch that raises fails the step, as one call always did

    @property
    def key(self) -> str:
        """A step mapping key (Dagster allows [A-Za-z0-9_] only): stable, sortable, names the first scope."""
        first = re.sub(r"[^A-Za-z0-9_]", "_", self.scopes[0].key)[:40].strip("_") if self.scopes else ""
        first = first or ("all" if self.scopes else "none")  # a whole-platform scope ("*")
        return f"b{self.index:04d}_{first}"

    @property
    def names(self) -> list[str]:
        return [scope.name for scope in self.scopes]


def scopes_per_step(value: str | None) -> int:
    """QLRF_SCOPES_PER_STEP: a positive integer, or 0 for "every scope in one step" (unset: the default)."""
    if value is None or not str(value).strip():
        return DEFAULT_SCOPES_PER_STEP
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(f"QLRF_SCOPES_PER_STEP={value!r}: expected a whole number (0 = one step)") from None
    if number < 0:
        raise ValueError(f"QLRF_SCOPES_PER_STEP={value!r}: expected 0 or more")
    return number


# --------------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------------


def live_scopes(platform: str, config: Any, registry: Registry = REGISTRY) -> list[Scope]:
    """The scopes a live connector configuration names, in the order the connector merges them (each
    connector's config module says which: AWS the default chain's account first, then roles in
    account-id order; Azure subscriptions case-insensitively sorted; GCP projects sorted; vCenters in
    configuration order). A platform whose connector does not say is one "whole" scope."""
    module = scope_module(platform, registry) if config is not None else None
    if module is None:
        return [Scope(platform, "whole", "*")]
    keys = module.scope_keys(config)
    if not keys:
        raise ValueError(f"{platform} discovery names no {module.SCOPE_KIND}s: nothing to plan")
    return [Scope(platform, module.SCOPE_KIND, key) for key in keys]


def manifest_scopes(platform: str, files: Sequence[Mapping[str, Any]]) -> list[Scope]:
    """One scope for the manifest's un-hinted files (normalised together: an AWS snapshot file links to
    every account's instances), then one per file that carries its own account/region hint."""
    plain = tuple(f for f in files if not (f.get("account") or f.get("region")))
    scopes = [Scope(platform, "files", "files", plain)] if plain else []
    for entry in files:
        if entry.get("account") or entry.get("region"):
            key = "/".join(str(entry[k]) for k in ("account", "region") if entry.get(k))
            scopes.append(Scope(platform, "files", key, (entry,)))
    return scopes


def batches(
    scopes: Sequence[Scope], per_step: int, *, source: str, discovered_at: datetime, directory: str | None = None
) -> list[ScopeBatch]:
    """Consecutive groups of at most `per_step` scopes (0: all in one), in plan order."""
    if not scopes:
        return []
    size = per_step if per_step > 0 else len(scopes)
    starts = range(0, len(scopes), size)
    return [
        ScopeBatch(
            scopes[0].platform, i, source, tuple(scopes[start : start + size]), discovered_at, directory, len(starts)
        )
        for i, start in enumerate(starts)
    ]


def narrow(platform: str, config: Any, scopes: Sequence[Scope], registry: Registry = REGISTRY) -> Any:
    """A copy of the connector configuration that discovers only `scopes` (everything else unchanged)."""
    module = scope_module(platform, registry)
    if module is None:
        raise ValueError(f"{platform}: no scope unit to narrow discovery to (it runs as one whole scope)")
    return module.narrow(config, [scope.key for scope in scopes])


# --------------------------------------------------------------------------------------------------
# Failure and merge
# --------------------------------------------------------------------------------------------------


def failed_batch(batch: ScopeBatch, exc: BaseException, tenancy: Tenancy) -> Discovered:
    """A step that raised: every scope of it recorded as failed with the one-line reason (credentials
    masked), so the other steps' rows are still written and the run says which scopes and why."""
    text = " ".join(str(exc).split())[:1000]
    out = Discovered.empty(tenancy)
    for scope in batch.scopes:
        reason = redact_credentials(f"{scope.name}: {type(exc).__name__}: {text}")
        out.failed_scopes.append({"scope": scope.name, "reason": reason})
    return out


def merge(platform: str, parts: Sequence[tuple[int, Discovered]], registry: Registry = REGISTRY) -> Discovered:
    """The batches' results as one, as serial discovery would give it: concatenated in plan order
    (`parts` are (batch index, result) in any order), duplicate asset ids rejected once across all of
    them (naming both records), facts the connector de-duplicates by image id listed once, failed
    scopes sorted by scope."""
    out = Discovered.concat([part for _, part in sorted(parts, key=lambda p: p[0])])
    out.reject_duplicate_ids()
    module = scope_module(platform, registry) if len(parts) > 1 else None
    for table in getattr(module, "DEDUPED_FACTS", ()):
        rows = out.facts.get(table)
        if rows is not None:
            seen: dict[str, dict] = {}
            for row in rows:
                seen.setdefault(str(row.get("image_id", "")).lower(), row)
            out.facts[table] = [seen[k] for k in sorted(seen)]
    out.failed_scopes.sort(key=lambda f: f["scope"])
    return out
