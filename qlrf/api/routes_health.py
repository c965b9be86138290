"""Liveness and readiness for probes: no identity needed, nothing secret said."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from qlrf.api.readiness import readiness
from qlrf.api.schemas import ReadyBody

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get("/readyz", response_model=ReadyBody, responses={503: {"model": ReadyBody}})
def readyz(request: Request) -> JSONResponse:
    """200 when the task database answers, the warehouse has a materialised day and the gate policy
    loads; 503 naming each part that is not ready."""
    state = request.app.state
    checks = readiness(state.open_store, state.settings.warehouse, state.gate_check)
    body = ReadyBody(ready=all(c.ok for c in checks), checks=[c.as_dict() for c in checks],
                     not_ready=[c.name for c in checks if not c.ok])
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)
