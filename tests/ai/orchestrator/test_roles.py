"""Issue 14: a viewer's question is answered; a viewer's proposal is refused at the task step with the
role it needs, and recorded as ``access_denied``; nothing is written to the task store."""

from __future__ import annotations

from qlrf.ai.copilot import read_only
from qlrf.tenancy.enforce import refusal
from qlrf.tenancy.roles import Grant, Principal
from tests.ai.orchestrator.conftest import Scripted, proposal

PATCH = "patch the revoked images in syd1 dev"
VIEWER = Principal("vera", "signed_in", (Grant("viewer", "unassigned"),))
OPERATOR = Principal("olga", "signed_in", (Grant("operator", "unassigned"),))


def router() -> Scripted:
    return Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1", environment="dev"))


def test_a_viewers_proposal_is_refused_at_the_task_step_and_audited(orchestrator, store, audit):
    denied = refusal(VIEWER, "ask", "unassigned", audit=audit)
    assert denied is not None
    result = read_only(orchestrator(router()), *denied).ask(PATCH, requested_by=VIEWER.name)
    assert result.refused_by == "task" and result.task_id is None and store.list() == []
    assert "vera may not ask in unassigned: that needs the operator role, they hold viewer" in result.answer
    [record] = audit.records(kind="access_denied")
    assert (record.actor, record.data["action"], record.data["org"]) == ("vera", "ask", "unassigned")


def test_a_viewers_question_is_answered_and_records_nothing_denied(orchestrator, store, audit):
    denied = refusal(VIEWER, "ask", "unassigned", audit=audit)
    answer = Scripted("drift", "answer", tools=(("query_assets", {"site": "syd1", "environment": "prod"}),),
                      answer="1 prod VM in syd1 runs a revoked image.")
    result = read_only(orchestrator(answer), *denied).ask("which prod VMs in syd1 still run revoked images?",
                                                          requested_by=VIEWER.name)
    assert result.refused_by is None and store.list() == [] and audit.records(kind="access_denied") == []


def test_an_operator_proposes(orchestrator, store, audit):
    assert refusal(OPERATOR, "ask", "unassigned", audit=audit) is None
    result = orchestrator(router()).ask(PATCH, requested_by=OPERATOR.name)
    [task] = store.list()
    assert result.task_id == task.id and task.requested_by == "olga"
