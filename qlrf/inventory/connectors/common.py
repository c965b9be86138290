"""What every live connector shares, written once: the scope fan-out, the per-scope result, the finish
step that merges scopes into one Normalised, the one-line failure reason, and the fact rows whose keys
the platforms have in common (images, scaling groups).

A scope is the unit that fails on its own: an AWS account x region, an Azure subscription, a GCP
project, a vCenter. Scopes run concurrently on one pool; a scope that raises is recorded in
Normalised.failed_scopes as {"scope", "reason"} and the others still count. Each platform module keeps
only what is its own: its configuration, its SDK calls, its error codes and its extra fact columns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qlrf.envparse import redact_credentials, redact_secrets
from qlrf.inventory.contract import Normalised

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: Fact tables every connector result carries, empty when nothing was found, so readers need no guard.
FACT_TABLES = ("images", "scaling_groups")


def silent(_message: str) -> None:
    """The progress callback when the caller passes none."""


class ScopeFailed(Exception):
    """A whole scope (subscription, project, region, vCenter) could not be read; recorded, not fatal."""

    def __init__(self, scope: str, reason: str):
        super().__init__(reason)
        self.scope = scope
        self.reason = reason

    def as_row(self) -> dict:
        return {"scope": self.scope, "reason": self.reason}


# --------------------------------------------------------------------------------------------------
# Leaf calls inside one scope
# --------------------------------------------------------------------------------------------------


def gather(pool: ThreadPoolExecutor, calls: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run independent leaf calls on `pool`; each result is its value or the exception it raised.
    Leaf calls never wait on the pool themselves, so this cannot deadlock."""
    futures = {name: pool.submit(fn) for name, fn in calls.items()}
    out: dict[str, Any] = {}
    for name, future in futures.items():
        try:
            out[name] = future.result()
        except Exception as exc:  # noqa: BLE001 - returned to the caller, which decides
            out[name] = exc
    return out


def fan_map(pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """fn over items on `pool` (a single item runs inline: no hand-off for nothing); the first exception
    propagates. Only leaf calls go to the pool (they never wait on it), so it cannot deadlock."""
    if len(items) <= 1:
        return [fn(item) for item in items]
    return [f.result() for f in [pool.submit(fn, item) for item in items]]


# --------------------------------------------------------------------------------------------------
# Scopes
# --------------------------------------------------------------------------------------------------


@dataclass
class ScopeResult:
    """One scope's share of a discovery. Platforms subclass it with what they collected and say how
    to count it (`counts`); the progress line and the part failures are shaped here, once."""

    platform: str = field(init=False, default="")
    name: str = ""  # the scope without the platform prefix: "<account>/<region>", a subscription...
    failed: list[dict] = field(default_factory=list)  # parts of the scope that failed: {scope, reason}
    seconds: float = 0.0

    def counts(self) -> list[str]:
        """What the scope yielded, as "<n> <things>" phrases for the progress line."""
        raise NotImplementedError

    def part_name(self, scope: str) -> str:
        """How a failed part is named in the progress line: the part after the last colon."""
        return scope.rsplit(":", 1)[-1]

    @property
    def summary(self) -> str:
        parts = self.counts()
        if self.failed:
            parts.append("incomplete: " + ", ".join(self.part_name(f["scope"]) for f in self.failed))
        return f"{self.platform} {self.name}: " + ", ".join(parts) + f" ({self.seconds:.1f} s)"


Unexpected = Callable[[Exception, Any], ScopeFailed]


class ScopeFanOut:
    """Independent scopes on one pool, yielded as they complete. A scope that raises ScopeFailed is
    recorded; any other exception (a bug, an unforeseen SDK error) is turned into one by `unexpected`
    and recorded too, so one scope can never lose the others. More scopes may be submitted while
    iterating (AWS learns its regions from its accounts)."""

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        platform: str,
        say: Progress,
        failed: list[dict],
        unexpected: Unexpected,
    ):
        self._pool = pool
        self._platform = platform
        self._say = say
        self._failed = failed
        self._unexpected = unexpected
        self._pending: dict[Future, Any] = {}

    def submit(self, key: Any, fn: Callable[..., Any], *args: Any) -> None:
        """Run fn(*args) as one scope; `key` comes back with its value (and names it if it fails)."""
        self._pending[self._pool.submit(fn, *args)] = key

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        while self._pending:
            done, _ = wait(list(self._pending), return_when=FIRST_COMPLETED)
            for future in done:
                key = self._pending.pop(future)
                try:
                    value = future.result()
                except Exception as exc:  # noqa: BLE001 - recorded, the other scopes go on
                    self.record(exc if isinstance(exc, ScopeFailed) else self._unexpected(exc, key))
                    continue
                yield key, value

    def record(self, failed: ScopeFailed) -> None:
        self._failed.append(failed.as_row())
        log.warning("%s", failed.reason)
        self._say(
            f"{self._platform} {failed.scope.removeprefix(self._platform + ':')}: FAILED: {failed.reason}"
        )


def unexpected_failure(exc: Exception, scope: str, reason: str) -> ScopeFailed:
    """An unforeseen error in one scope, logged with its traceback and recorded like any failure."""
    log.error("%s: unexpected error", scope, exc_info=exc)
    return ScopeFailed(scope, reason)


def finish(
    result: Normalised,
    parts: Iterable[Normalised],
    say: Progress,
    summary: Callable[[Normalised], str],
    started: float,
    tables: Sequence[str] = FACT_TABLES,
) -> Normalised:
    """Merge the scopes' rows into `result` in the order given (callers sort: output is deterministic
    whatever order the scopes finished in), make sure every fact table exists, sort the failed scopes,
    and say the one summary line (`summary` words it from the merged result, the time is added here)."""
    for part in parts:
        result.extend(part)
    for name in tables:
        result.facts.setdefault(name, [])
    result.failed_scopes.sort(key=lambda f: f["scope"])
    say(f"{summary(result)} ({time.perf_counter() - started:.1f} s)")
    return result


# --------------------------------------------------------------------------------------------------
# Reasons
# --------------------------------------------------------------------------------------------------


def one_line(text: object, limit: int = 1000) -> str:
    """Any SDK message folded onto one line (reasons land in tables and log lines), at most `limit` chars."""
    return " ".join(str(text).split())[:limit]


class Scrubber:
    """The credential values a connector has seen; none of them may survive into a reason or a log
    line. Thread-safe: assumed-role secrets arrive from worker threads."""

    def __init__(self, secrets: Iterable[str | None] = (), limit: int | None = None):
        self._secrets = {s for s in secrets if s}
        self._limit = limit
        self._lock = threading.Lock()

    def remember(self, *values: str | None) -> None:
        with self._lock:
            self._secrets.update(v for v in values if v)

    def __call__(self, text: str) -> str:
        with self._lock:
            secrets = list(self._secrets)
        text = redact_secrets(text, secrets)  # every spelling, and credential-shaped values
        return text if self._limit is None else text[: self._limit]


Rule = Callable[[BaseException, str], str | None]


def explain(exc: BaseException, who: str, rules: Sequence[Rule]) -> str:
    """A one-line reason a person can act on, naming the scope (`who`). Each platform gives its rules
    (unreachable endpoint, throttling, expired or rejected credentials, opt-in, its API error shape);
    the first that recognises `exc` words the reason; anything none knows is still named, as unexpected.
    Credential-shaped values (a bearer token a server quoted back) are masked: a reason is stored and shown."""
    for rule in rules:
        reason = rule(exc, who)
        if reason is not None:
            return redact_credentials(reason)
    return redact_credentials(f"{who}: unexpected {type(exc).__name__}: {one_line(exc)}")


# --------------------------------------------------------------------------------------------------
# Fact rows: the columns the platforms share
# --------------------------------------------------------------------------------------------------


def image_fact_row(
    *,
    image_id: str,
    image_type: str,
    account: str | None,
    region: str | None,
    found: bool | None,
    discovered_at: datetime,
    name: str | None = None,
    description: str | None = None,
    owner_id: str | None = None,
    owner_alias: str | None = None,
    created_at: datetime | None = None,
    deprecated_at: datetime | None = None,
    state: str | None = None,
    public: bool | None = None,
    tags: dict[str, str] | None = None,
    **own: Any,
) -> dict:
    """One image (AMI, gallery version, GCE image...) as a fact row: the keys every platform fills, plus
    the platform's own (`own`), so the images table reads the same whatever the cloud."""
    return {
        "image_id": image_id,
        "image_type": image_type,
        "account": account,
        "region": region,
        "found": found,
        "name": name,
        "description": description,
        "owner_id": owner_id,
        "owner_alias": owner_alias,
        "created_at": created_at,
        "deprecated_at": deprecated_at,
        "state": state,
        "public": public,
        "tags": tags or {},
        "discovered_at": discovered_at,
        **own,
    }


def scaling_group_row(
    *,
    account: str | None,
    region: str | None,
    group_name: str | None,
    desired_capacity: int | None,
    members: Iterable[str],
    discovered_at: datetime,
    **own: Any,
) -> dict:
    """One scaling group (ASG, scale set, MIG) as a fact row: members sorted and counted here, the
    platform's own columns (`own`) alongside."""
    ordered = sorted(members)
    return {
        "account": account,
        "region": region,
        "group_name": group_name,
        "desired_capacity": desired_capacity,
        "members": ordered,
        "member_count": len(ordered),
        "discovered_at": discovered_at,
        **own,
    }
