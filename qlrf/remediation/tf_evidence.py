"""Evidence for a Terraform-managed plan: the `terraform show -json` plan file made from its patch.

:func:`check_evidence` asks ``policy/terraform.rego`` (decision ``qlrf/terraform/decision``, conftest
style) whether the plan file only updates or replaces the expected resources with the golden image,
deletes nothing else and changes nothing else. :func:`record_evidence` audits the verdict with the
file's sha256 (``terraform_evidence``, subject = task id), refused files included. The task store
then accepts an approval of that task only with the sha256 of the newest accepted file
(:meth:`TaskStore.approve`, ``evidence_hash``): a different file, or one the gate refused, is refused.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qlrf.remediation.gate.decision import strict_json
from qlrf.remediation.plans import PatchPlan
from qlrf.remediation.terraform import TerraformError

EVIDENCE_KIND = "terraform_evidence"
DECISION_PATH = "qlrf/terraform/decision"
_INDEX = re.compile(r"^(resource_changes|expected\.resources)\[(\d+)\]")


@dataclass(frozen=True)
class Evidence:
    sha256: str  # "sha256:<64 hex>" of the file's bytes, as the approval names it
    source: str
    allow: bool
    reasons: tuple[str, ...] = ()
    changes: list[dict[str, Any]] = field(default_factory=list)  # address + actions of every changing resource

    def as_record(self, plan: PatchPlan) -> dict[str, Any]:
        return {"evidence_sha256": self.sha256, "file": self.source, "allow": self.allow, "deny": list(self.reasons),
                "plan_hash": plan.content_hash or plan.compute_hash(), "changes": self.changes}


def file_sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _named(reason: str, changes: list, expected: list) -> str:
    """Add the address a Rego message names by index (Rego never echoes strings from the plan file)."""
    match = _INDEX.match(reason)
    if not match:
        return reason
    items = changes if match.group(1) == "resource_changes" else expected
    i = int(match.group(2))
    address = items[i].get("address") if match.group(1) == "resource_changes" and i < len(items) and isinstance(
        items[i], dict) else (items[i] if i < len(items) else None)
    return f"{reason} [{address}]" if address else reason


def check_evidence(plan: PatchPlan, data: bytes, gate: Any, source: str = "<plan file>") -> Evidence:
    """The gate's verdict on a `terraform show -json` file for `plan` (a refusal is a verdict, not an error).

    Raises :class:`TerraformError` only when `plan` is not Terraform-managed or the file is not JSON.
    """
    delivery = plan.spec.terraform
    if delivery is None or plan.spec.to_image is None:
        raise TerraformError(f"plan {plan.metadata.id} is not Terraform-managed: it takes no terraform plan file")
    digest = file_sha256(data)
    try:
        doc = strict_json(data)
    except ValueError as exc:
        return Evidence(digest, source, False, (f"{source}: not a JSON document: {exc}",))
    if not isinstance(doc, dict):
        return Evidence(digest, source, False, (f"{source}: expected a JSON object (terraform show -json output)",))
    expected = {"resources": list(delivery.expected_resources), "image_attribute": delivery.image_attribute,
                "image": plan.spec.to_image.image_ref}
    decision = gate.decide({"plan": doc, "expected": expected})
    changes = doc.get("resource_changes") if isinstance(doc.get("resource_changes"), list) else []
    reasons = tuple(_named(r, changes, expected["resources"]) for r in decision.reasons)
    summary = [{"address": rc.get("address"), "actions": (rc.get("change") or {}).get("actions")}
               for rc in changes if isinstance(rc, dict) and (rc.get("change") or {}).get("actions") not in (["no-op"], ["read"])]
    return Evidence(digest, source, bool(decision.allow and not reasons), reasons, summary)


def evidence_gate(policy_dir: str | Path | None = None) -> Any:
    """The embedded gate at ``policy/terraform.rego``'s decision."""
    from qlrf.remediation.gate import Gate

    return Gate.embedded(policy_dir, decision_path=DECISION_PATH)


def record_evidence(store: Any, task_id: str, path: str | Path, gate: Any, *, actor: str) -> Evidence:
    """Check the plan file for the task's plan and audit the verdict (accepted or refused) with its sha256."""
    if store.audit is None:
        raise TerraformError("recording terraform evidence needs the audit log")
    task = store.get(task_id)
    plan = task.plan()
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TerraformError(f"{path}: cannot read the terraform plan file: {exc.strerror or exc}") from exc
    evidence = check_evidence(plan, data, gate, str(path))
    store.audit.append(EVIDENCE_KIND, actor, task.id, {"task_id": task.id, **evidence.as_record(plan)})
    return evidence


def accepted_evidence(audit: Any, task_id: str, plan_hash: str) -> dict[str, Any] | None:
    """The newest evidence record of the task for this plan hash, if the gate accepted it (else None)."""
    if audit is None:
        return None
    records = [r for r in audit.records(subject=task_id, kind=EVIDENCE_KIND) if r.data.get("plan_hash") == plan_hash]
    if not records or not records[-1].data.get("allow"):
        return None
    return dict(records[-1].data)


__all__ = ["DECISION_PATH", "EVIDENCE_KIND", "Evidence", "accepted_evidence", "check_evidence", "evidence_gate",
           "file_sha256", "record_evidence"]
