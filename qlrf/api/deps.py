"""What the routers need per request, taken from the app's state (set once by create_app)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from qlrf.api.asking import Ask
from qlrf.api.identity import Identity
from qlrf.remediation.approvals import TaskStore
from qlrf.tenancy.roles import Principal

# Declared for the OpenAPI "Authorize" button only; the header itself is judged by the Authenticator,
# so a malformed header is refused rather than read as "no header" (which could mean the local user).
_bearer = HTTPBearer(auto_error=False, description="a token whose sha256 is in QLRF_API_TOKENS_FILE")


def caller(request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Identity:
    return request.app.state.authenticator.identify(request.headers.get("authorization"))


def principal(request: Request, who: Annotated[Identity, Depends(caller)]) -> Principal:
    """The caller with the grants the role table holds for them now (a revoke counts from the next request)."""
    return request.app.state.open_grants().principal(who.name, who.via)


def task_store(request: Request) -> TaskStore:
    return request.app.state.open_store()


def asker(request: Request) -> Ask:
    return request.app.state.ask_factory()


Caller = Annotated[Identity, Depends(caller)]
Acting = Annotated[Principal, Depends(principal)]
Store = Annotated[TaskStore, Depends(task_store)]
Asker = Annotated[Ask, Depends(asker)]
