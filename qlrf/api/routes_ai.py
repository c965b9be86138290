"""Ask the AI orchestrator: an answer, a task waiting for approval, or a refusal saying which step refused.

All three are 200: the question was handled, and ``refused_by`` / ``task_id`` in the body say how.
401 without an identity, 422 for a malformed body, 503 when the orchestrator is unavailable.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from qlrf.api.deps import Acting, Asker
from qlrf.api.errors import documented
from qlrf.api.schemas import AskRequest, AskResponse
from qlrf.tenancy.enforce import UNASSIGNED_ORG, refusal, require

router = APIRouter(prefix="/api/v1/ai", tags=["ai"])


@router.post("/execute", response_model=AskResponse, responses=documented(401, 403, 503))
def execute(body: AskRequest, who: Acting, ask: Asker, request: Request) -> JSONResponse:
    """The same JSON as ``qlrf ask --json``; the requester is the caller, never a field of the body.
    Answers need the viewer role in ``org_id`` (default: the unassigned organisation; 403 otherwise),
    proposals the operator role (a viewer's proposal is refused at the task step and audited)."""
    org = (body.org_id or UNASSIGNED_ORG).strip().lower()
    audit = request.app.state.open_grants().audit
    require(who, "read", org, audit=audit)
    denied = refusal(who, "ask", org, audit=audit)
    extra = {"refuse_proposals": denied} if denied else {}
    result = ask(body.intent, org=body.org_id, requested_by=who.name, **extra)
    return JSONResponse(result.as_dict())
