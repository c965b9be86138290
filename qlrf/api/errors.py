"""Refusals from the domain core, as HTTP statuses: by exception type, never by message text.

    TaskNotFound          404 task_not_found
    SelfApprovalRefused   403 self_approval
    AccessDenied          403 forbidden            (the caller's role does not allow it; audited as access_denied)
    PlanHashMismatch      409 plan_hash_mismatch   (review the current plan and pass its hash)
    ApprovalExpired       409 approval_expired     (the task is now expired)
    TaskStateError        409 task_state           (any other refused move: already decided, ...)
    AskUnavailable        503 ai_unavailable
    StoreUnavailable      503 task_database_unavailable   (also SQLAlchemy's OperationalError mid-request)
    Unauthenticated       401 unauthenticated      (with WWW-Authenticate: Bearer)

Bodies are ``{"detail": "<one line>", "error": "<code>"}``; validation errors keep FastAPI's 422
shape (a list of field errors under ``detail``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from qlrf.api.asking import AskUnavailable
from qlrf.api.identity import Unauthenticated
from qlrf.remediation.approvals import (
    ApprovalExpired,
    PlanHashMismatch,
    SelfApprovalRefused,
    TaskNotFound,
    TaskStateError,
)
from qlrf.tenancy.roles import AccessDenied


class StoreUnavailable(RuntimeError):
    """The task database cannot be opened (its message names no URL and no password)."""


STATUS: dict[type[Exception], tuple[int, str]] = {
    TaskNotFound: (404, "task_not_found"),
    SelfApprovalRefused: (403, "self_approval"),
    AccessDenied: (403, "forbidden"),
    PlanHashMismatch: (409, "plan_hash_mismatch"),
    ApprovalExpired: (409, "approval_expired"),
    TaskStateError: (409, "task_state"),
    AskUnavailable: (503, "ai_unavailable"),
    StoreUnavailable: (503, "task_database_unavailable"),
    OperationalError: (503, "task_database_unavailable"),
    Unauthenticated: (401, "unauthenticated"),
}


def _detail(exc: Exception) -> str:
    if isinstance(exc, OperationalError):  # its text quotes SQL and parameters: say only what failed
        return "task database unreachable: try again, or see GET /readyz"
    return str(exc)


def _handler(status: int, code: str):
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": _detail(exc), "error": code}, status_code=status, headers=headers)

    return handle


def install(app: FastAPI) -> None:
    """Starlette picks the handler of the most specific class, so subclasses win over TaskStateError."""
    for exc_type, (status, code) in STATUS.items():
        app.add_exception_handler(exc_type, _handler(status, code))


def documented(*statuses: int) -> dict[int | str, dict]:
    """OpenAPI ``responses=`` for the error statuses a route can answer."""
    from qlrf.api.schemas import ErrorBody

    return {status: {"model": ErrorBody} for status in statuses}
