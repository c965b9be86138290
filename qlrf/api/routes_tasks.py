"""Approval tasks: list, show, approve, reject. The approver is always the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from qlrf.api.deps import Acting, Store
from qlrf.api.errors import documented
from qlrf.api.schemas import (
    DEFAULT_PAGE,
    MAX_PAGE,
    TASK_ID,
    ReviewRequest,
    TaskDetail,
    TaskPage,
    TaskState,
    TaskSummary,
)
from qlrf.tenancy.enforce import require_on_task, review
from qlrf.tenancy.readers import known_orgs, readable_orgs

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])
TaskId = Annotated[str, Path(pattern=TASK_ID, description="task-<16 hex>")]


@router.get("", response_model=TaskPage, responses=documented(401))
def list_tasks(
    who: Acting,
    store: Store,
    state: Annotated[list[TaskState] | None, Query(description="one or more states")] = None,
    environment: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> TaskPage:
    """Tasks of the organisations the caller may read, oldest first; never the plan body (ask for one
    task to see it). A read grant on every organisation lists every task."""
    orgs = readable_orgs(who, known_orgs())
    total = store.count(state, environment, orgs)
    tasks = store.list(state, environment, limit=limit, offset=offset, orgs=orgs)
    following = offset + len(tasks)
    return TaskPage(tasks=[TaskSummary.of(t) for t in tasks], total=total, limit=limit, offset=offset,
                    next_offset=following if following < total else None)


@router.get("/{task_id}", response_model=TaskDetail, responses=documented(401, 403, 404, 409))
def show_task(task_id: TaskId, who: Acting, store: Store) -> TaskDetail:
    """One task with its gate decision and plan: what a reviewer reads before approving by hash
    (a viewer of the task's organisation at least)."""
    task = store.get(task_id)
    require_on_task(who, "read", task, audit=store.audit)
    return TaskDetail.of(task)


@router.post("/{task_id}/approve", response_model=TaskSummary, responses=documented(401, 403, 404, 409))
def approve_task(task_id: TaskId, body: ReviewRequest, who: Acting, store: Store) -> TaskSummary:
    """Approve the plan you reviewed (by its hash): an approver of the task's organisation (403
    otherwise, audited), never the task's requester (403)."""
    return TaskSummary.of(review(store, who, task_id,
                                 lambda name: store.approve(task_id, body.plan_hash, name, body.reason)))


@router.post("/{task_id}/reject", response_model=TaskSummary, responses=documented(401, 403, 404, 409))
def reject_task(task_id: TaskId, body: ReviewRequest, who: Acting, store: Store) -> TaskSummary:
    """Reject the plan you reviewed (by its hash); like approval: an approver, not the requester."""
    return TaskSummary.of(review(store, who, task_id,
                                 lambda name: store.reject(task_id, body.plan_hash, name, body.reason)))
