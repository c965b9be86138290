"""The approval queue a person can work through (issue 12 item 8): one open plan per scope, ranked.

* Score (:func:`queue_score`): risk level first (a person must see critical before low), then the
  environment (prod exposure), then targets on revoked images (known-bad images running), then size
  (log-scaled: the 500th VM adds less than the 5th). Points: risk low 0 / medium 200 / high 400 /
  critical 600; environment dev 0 / staging 20 / prod 40; revoked targets 5 each, at most 40; targets
  ``round(4 x log2(1 + n))``, at most 40. So risk always outranks the rest, and within one risk level
  prod outranks a bigger staging plan only when the sizes are close.
* One open plan per site x environment x platform: :func:`open_in_scope` lists the pending tasks of
  a plan's scope; the planner proposes at most one pending plan per finding (the best-ranked) and
  supersedes the older pending ones of the scope (``TaskStore.propose(..., supersede=...)``:
  rejected "superseded by <new id>", audited). A scope's pending plan from a newer day is never
  superseded by an older day's plan.
* A work-in-progress limit (:func:`admit`, policy ``queue.max_pending`` and optionally
  ``queue.max_pending_per_environment``): a plan that would wait for a person enters a full queue
  only by outranking its lowest-ranked pending plan, which it then displaces (rejected "deferred:
  outranked by <new id>"); otherwise it is deferred, to be planned again from the next day's
  findings. AI tasks are neither counted nor displaced: a person asked for them.
* Bulk decisions (:func:`bulk_decide`) only for low-risk plans, each bound to its own plan hash and
  refused one by one as a single decision would be (self-approval, expiry).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qlrf.remediation.approvals import PATCH_PLAN, Task, TaskStateError, TaskStore
from qlrf.remediation.plans import PatchPlan

RISK_POINTS = {"low": 0, "medium": 200, "high": 400, "critical": 600}  # a step > every other part together (120)
ENV_POINTS = {"dev": 0, "staging": 20, "prod": 40}
REVOKED_POINTS, REVOKED_CAP = 5, 40
SIZE_FACTOR, SIZE_CAP = 4, 40
BULK_RISK = "low"


def queue_score(risk_level: str, environment: str, targets: int, revoked_targets: int) -> int:
    """The queue rank of a plan (see the module docstring); higher comes first."""
    return (RISK_POINTS.get(risk_level, RISK_POINTS["critical"]) + ENV_POINTS.get(environment, ENV_POINTS["prod"])
            + min(REVOKED_CAP, REVOKED_POINTS * max(0, revoked_targets))
            + min(SIZE_CAP, round(SIZE_FACTOR * math.log2(1 + max(0, targets)))))


def _revoked(finding: Mapping[str, Any]) -> int:
    value = finding.get("revoked_targets")
    return int(value) if isinstance(value, int | float) else 0


def plan_score(plan: PatchPlan) -> int:
    meta = plan.metadata
    return queue_score(meta.risk_level, meta.environment, plan.spec.targets.count(), _revoked(meta.finding))


def rank_plans(plans: Iterable[PatchPlan]) -> list[PatchPlan]:
    """Best-ranked first; ties by plan id, so the same finding always ranks the same way."""
    return sorted(plans, key=lambda p: (-plan_score(p), p.metadata.id))


def scope_of(item: Task | PatchPlan) -> tuple[str, str, str]:
    """(site, environment, platform): the unit that has at most one open plan."""
    if isinstance(item, PatchPlan):
        meta = item.metadata
        return (meta.site or "-", meta.environment, meta.platform)
    return (item.site or "-", item.environment, item.platform)


def finding_day(task: Task) -> str:
    """The drift day the task's plan was made from ('' when the plan does not say)."""
    try:
        return str(task.plan().metadata.finding.get("day") or "")
    except Exception:  # noqa: BLE001 - an unreadable plan ranks oldest: it is superseded first
        return ""


def is_plan(task: Task) -> bool:
    """A patch-plan task: AI tasks are never superseded, ranked or bulk-decided as plans here."""
    return task.kind == PATCH_PLAN


def pending_plans(store: TaskStore, environment: str | None = None) -> list[Task]:
    """Pending patch-plan tasks, oldest first."""
    return [t for t in store.list(states="pending_approval", environment=environment) if is_plan(t)]


def plan_type_of(task: Task) -> str:
    """reimage | apply_tags | detach_public_ip ('reimage' for an unreadable plan)."""
    try:
        return task.plan().spec.plan_type
    except Exception:  # noqa: BLE001 - an unreadable plan is treated as the default kind
        return "reimage"


def open_in_scope(store: TaskStore, plan: PatchPlan) -> list[Task]:
    """The pending plan tasks of `plan`'s scope and plan type, oldest first (a tag fix never supersedes
    a re-imaging plan of the same site x environment x platform, nor the other way round)."""
    scope, kind = scope_of(plan), plan.spec.plan_type
    return [t for t in pending_plans(store, plan.metadata.environment) if scope_of(t) == scope and plan_type_of(t) == kind]


@dataclass(frozen=True)
class QueueEntry:
    task: Task
    score: int
    targets: int
    revoked_targets: int

    def line(self) -> str:
        t = self.task
        expires = t.expires_at.strftime("%Y-%m-%dT%H:%MZ") if t.expires_at else "-"
        return (f"{self.score:>4}  {t.id:<22}{t.risk_level:<9}{t.environment:<9}{t.platform:<9}{t.site or '-':<12}"
                f"{self.targets:>6} {self.revoked_targets:>4}  {expires:<18}{t.plan_id}")


QUEUE_HEADER = f"{'score':>5} {'task':<22}{'risk':<9}{'env':<9}{'platform':<9}{'site':<12}{'targets':>6} {'rvkd':>4}  {'expires':<18}plan"


_FACTS: dict[str, tuple[int, int]] = {}  # plan hash -> (targets, revoked targets): content-addressed, never stale
_FACTS_MAX = 4096


def _facts(task: Task) -> tuple[int, int]:
    """A pending plan's size and revoked targets; cached by hash, since planning ranks the queue once per plan."""
    known = _FACTS.get(task.plan_hash)
    if known is not None:
        return known
    try:
        plan = task.plan()
        facts = (plan.spec.targets.count(), _revoked(plan.metadata.finding))
    except Exception:  # noqa: BLE001 - an unreadable plan still shows, on its risk alone (not cached)
        return (0, 0)
    if len(_FACTS) >= _FACTS_MAX:
        _FACTS.clear()
    _FACTS[task.plan_hash] = facts
    return facts


def ranked_queue(store: TaskStore, *, environment: str | None = None) -> list[QueueEntry]:
    """The pending plan tasks, best-ranked first (ties: oldest first)."""
    entries = []
    for task in pending_plans(store, environment):
        targets, revoked = _facts(task)
        entries.append(QueueEntry(task, queue_score(task.risk_level, task.environment, targets, revoked), targets, revoked))
    return sorted(entries, key=lambda e: (-e.score, e.task.created_at, e.task.id))


@dataclass(frozen=True)
class Admission:
    """Whether a plan of `score` enters the queue now; ``displace`` is the pending task it pushes out."""

    admit: bool
    rank: int  # the place the plan takes (or would take) in the ranked queue, 1 = first
    limit: int | None  # the limit that was full (None: room left)
    pool: str  # "queue" or "environment <env>": what the limit counts
    displace: QueueEntry | None = None


def admit(queue: list[QueueEntry], score: int, environment: str, max_pending: int,
          per_environment: Mapping[str, int] | None = None) -> Admission:
    """Room for a new pending plan in `queue` (ranked, best first) under the limits.

    The environment's own limit is checked first: when it is full the plan can only push out that
    environment's lowest-ranked plan, so a tighter prod limit is never bypassed through the total.
    Ties keep the plan already waiting (it was there first).
    """
    rank = 1 + sum(1 for e in queue if e.score >= score)
    env_limit = (per_environment or {}).get(environment)
    in_env = [e for e in queue if e.task.environment == environment]
    if env_limit is not None and len(in_env) >= env_limit:
        pool, limit, members = f"environment {environment}", env_limit, in_env
    elif len(queue) >= max_pending:
        pool, limit, members = "queue", max_pending, queue
    else:
        return Admission(True, rank, None, "queue")
    lowest = members[-1] if members else None
    if lowest is not None and score > lowest.score:
        return Admission(True, rank, limit, pool, lowest)
    return Admission(False, rank, limit, pool)


@dataclass
class BulkResult:
    decided: list[Task] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "<task id>: <why>"


def bulk_decide(
    store: TaskStore,
    *,
    approve: bool,
    approver: str,
    reason: str,
    risk: str = BULK_RISK,
    environment: str | None = None,
    site: str | None = None,
    platform: str | None = None,
) -> BulkResult:
    """Approve (or reject) every pending low-risk task of the filter, each bound to its own hash.

    Why only low risk: a bulk decision is not a review of each plan, and the gate asks a person to
    review every high or critical plan; medium waits too, since it means staging or a big plan.
    """
    if risk != BULK_RISK:
        raise ValueError(f"bulk decisions are for {BULK_RISK}-risk plans only, got --risk {risk}: review the others one by one")
    result = BulkResult()
    act = store.approve if approve else store.reject
    for entry in ranked_queue(store, environment=environment):
        task = entry.task
        if task.risk_level != BULK_RISK or (site and task.site != site) or (platform and task.platform != platform):
            continue
        try:
            result.decided.append(act(task.id, task.plan_hash, approver, reason))
        except TaskStateError as exc:
            result.refused.append(f"{task.id}: {exc}")
    return result


__all__ = [
    "Admission",
    "BULK_RISK",
    "QUEUE_HEADER",
    "BulkResult",
    "QueueEntry",
    "admit",
    "bulk_decide",
    "finding_day",
    "is_plan",
    "open_in_scope",
    "pending_plans",
    "plan_score",
    "queue_score",
    "rank_plans",
    "ranked_queue",
    "scope_of",
]
