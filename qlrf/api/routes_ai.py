"""Ask the AI orchestrator: an answer, a task waiting for approval, or a refusal saying which step refused.

All three are 200: the question was handled, and ``refused_by`` / ``task_id`` in the body say how.
401 without an identity, 422 for a malformed body, 503 when the orchestrator is unavailable.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from qlrf.api.deps import Asker, Caller
from qlrf.api.errors import documented
from qlrf.api.schemas import AskRequest, AskResponse

router = APIRouter(prefix="/api/v1/ai", tags=["ai"])


@router.post("/execute", response_model=AskResponse, responses=documented(401, 503))
def execute(body: AskRequest, who: Caller, ask: Asker) -> JSONResponse:
    """The same JSON as ``qlrf ask --json``; the requester is the caller, never a field of the body."""
    result = ask(body.intent, org=body.org_id, requested_by=who.name)
    return JSONResponse(result.as_dict())
