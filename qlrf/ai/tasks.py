"""AI task specs in the approval task store: a sealed TaskSpec to the store's record, and back.

The store (``qlrf.remediation.approvals``) sits before ``qlrf.ai`` in the data flow and never imports
it, so it keeps a spec as an :class:`~qlrf.remediation.approvals.AiTaskDocument` (JSON, hash checked
as JSON); this module is the one place that translates, and the way back re-validates the spec
through its pydantic contract, so a stored spec that no longer parses is refused by field.
"""

from __future__ import annotations

from qlrf.ai.taskspec import TaskSpec, parse_spec
from qlrf.remediation.approvals import AI_TASK, AiTaskDocument, Task, TaskStateError


def task_document(spec: TaskSpec) -> AiTaskDocument:
    """The store's record of a sealed spec (raises TaskStateError when it is not sealed)."""
    if spec.content_hash is None:
        raise TaskStateError("an AI task spec must be sealed (content_hash) before it becomes a task")
    return AiTaskDocument(
        document=spec.model_dump(mode="json"),
        task_type=spec.task_type,
        environment=spec.scope.environment,
        platform=spec.scope.platform,
        site=spec.scope.site,
        risk_level=str(spec.risk_level),
        autonomy_mode=str(spec.autonomy_mode),
        targets=spec.scope.size(),
    )


def spec_of(task: Task) -> TaskSpec:
    """The task's spec, re-validated (contract and hash); TaskStateError for a patch plan or a bad spec."""
    if task.kind != AI_TASK:
        raise TaskStateError(f"task {task.id} is a {task.kind}: it has no AI task spec")
    try:
        return parse_spec(task.spec_document())
    except ValueError as exc:
        raise TaskStateError(f"task {task.id}: stored spec is not a valid TaskSpec: {exc}") from None


__all__ = ["spec_of", "task_document"]
