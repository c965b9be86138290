"""May this drill run now? The Rego ``dr`` decision and, where it asks, a human approval of the plan hash.

The decision is Rego's (policy/dr.rego, asked at ``qlrf/gate/dr/decision``), never Python's:

* denied, or the gate failed to decide -> refused (audited ``drill_refused``), nothing created;
* allowed without approval -> runs (the decision is audited ``drill_gate``);
* needs approval -> the sealed plan becomes a ``dr_drill`` task in the task store (pending), and the
  drill waits. Once a human approved that exact hash (not the requester: the store and the policy
  both refuse self-approval), the next run asks the gate again *with* the approval, starts the task
  (approved -> running, which checks the approval record in the audit log) and runs. An approval is
  used once: a task that already ran is not run again (re-seal the plan for a new approval).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qlrf.dr.plans import DrillPlan
from qlrf.remediation.approvals import AUTO_APPROVER, DrillDocument, Task, TaskStore
from qlrf.remediation.audit import AuditLog

DR_DECISION_PATH = "qlrf/gate/dr/decision"
ACTION = "run_drill"


def drill_request(plan: DrillPlan, *, targets: int, requested_by: str, approval: dict | None = None) -> dict[str, Any]:
    """The gate input for running ``plan`` over ``targets`` VMs (fields documented in policy/dr.rego)."""
    meta = plan.metadata
    request: dict[str, Any] = {
        "action": ACTION, "environment": meta.environment, "autonomy_mode": meta.autonomy_mode,
        "risk_level": meta.risk_level, "plan_hash": plan.plan_hash, "targets": targets, "cleanup": plan.spec.cleanup,
        "requested_by": requested_by, "platform": meta.platform, "site": meta.site, "plan_id": meta.id,
        "target": plan.spec.target.region,
    }
    if approval is not None:
        request["approval"] = approval
    return request


def drill_document(plan: DrillPlan, targets: int) -> DrillDocument:
    meta = plan.metadata
    return DrillDocument(document=plan.sealed().model_dump(mode="json"), plan_id=meta.id, environment=meta.environment,
                         platform=meta.platform, site=meta.site, risk_level=meta.risk_level,
                         autonomy_mode=meta.autonomy_mode, targets=targets)


@dataclass(frozen=True)
class Authorisation:
    allowed: bool
    message: str
    decision: dict
    task: Task | None = None


def authorise(plan: DrillPlan, *, targets: int, gate: Any, store: TaskStore | None, audit: AuditLog,
              requested_by: str, subject: str) -> Authorisation:
    """Ask the gate (and the task store, where approval is needed) whether the drill may run now."""
    decision = gate.decide(drill_request(plan, targets=targets, requested_by=requested_by))
    verdict = decision.as_dict()
    if decision.allow:
        audit.append("drill_gate", requested_by, subject, {"plan_hash": plan.plan_hash, "decision": verdict})
        return Authorisation(True, "allowed by policy without approval", verdict)
    if decision.gate_failed or decision.reasons or not decision.requires_approval:
        why = "; ".join(decision.reasons) or str(decision.outcome)
        audit.append("drill_refused", requested_by, subject, {"plan_hash": plan.plan_hash, "decision": verdict})
        return Authorisation(False, f"refused by the dr policy ({decision.outcome}): {why}", verdict)
    if store is None:
        return Authorisation(False, "the dr policy requires approval and no task store is configured", verdict)
    task = store.by_hash(plan.plan_hash)
    if task is None:
        task = store.propose_drill(drill_document(plan, targets), requested_by, decision)
    if task.state == "pending_approval":
        return Authorisation(False, (f"waiting for approval: task {task.id} ({'; '.join(decision.approval_reasons)}); "
                                     f"approve with `qlrf approvals approve {task.id} --hash {task.plan_hash} "
                                     "--reason TEXT` (an approver of its organisation, not the requester)"), verdict, task)
    if task.state != "approved":
        return Authorisation(False, f"task {task.id} for this plan hash is {task.state}: an approval is used once; "
                                    "re-seal the plan (new created_at) for a new drill", verdict, task)
    approval = None if task.approver in (None, AUTO_APPROVER) else {"plan_hash": task.plan_hash, "approver": task.approver}
    decision = gate.decide(drill_request(plan, targets=targets, requested_by=task.requested_by, approval=approval))
    verdict = decision.as_dict()
    if not decision.allow:
        audit.append("drill_refused", requested_by, subject, {"plan_hash": plan.plan_hash, "task_id": task.id,
                                                              "decision": verdict})
        why = "; ".join(decision.reasons or decision.approval_reasons) or str(decision.outcome)
        return Authorisation(False, f"refused by the dr policy with the approval of task {task.id}: {why}", verdict, task)
    task = store.start(task.id, actor=requested_by)
    audit.append("drill_gate", requested_by, subject, {"plan_hash": plan.plan_hash, "task_id": task.id, "decision": verdict})
    return Authorisation(True, f"approved by {task.approver} (task {task.id})", verdict, task)


__all__ = ["ACTION", "DR_DECISION_PATH", "Authorisation", "authorise", "drill_document", "drill_request"]
