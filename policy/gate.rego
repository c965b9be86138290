# The action gate: one decision for every action the remediation loop (and any AI task) takes.
#
#   data.qlrf.gate.decision = {
#     "allow": bool,              # may run now: well formed, no deny reason, approved if approval is needed
#     "requires_approval": bool,  # a human must approve this plan hash (reasons in approval_reasons)
#     "deny": set of strings,     # any reason at all blocks the action, approved or not
#     "approval_reasons": set of strings,
#     "approved": bool,           # input.approval is a valid approval of input.plan_hash
#   }
#
# The input schema is documented in qlrf/remediation/gate/gate.py. Callers treat an undefined decision as deny.
package qlrf.gate

import rego.v1

import data.qlrf.gate.autonomy
import data.qlrf.gate.common
import data.qlrf.gate.compliance
import data.qlrf.gate.drift_delta
import data.qlrf.gate.image_family
import data.qlrf.gate.production_safety
import data.qlrf.gate.risk_level

# Every policy's reasons, plus the approval rules below.
deny := union({common.deny, production_safety.deny, autonomy.deny, drift_delta.deny, image_family.deny, compliance.deny, approval_deny})

needs_approval := (autonomy.needs_approval | risk_level.needs_approval) | compliance.needs_approval

# An approval is bound to the exact plan hash (modifying a plan makes a new hash that needs a new
# approval), names its approver, and does not come from the requester.
approval_deny := approval_problems if input.approval != null else := set()

approval_problems contains "approval must be an object {plan_hash, approver}" if {
	not is_object(input.approval)
}

approval_problems contains "approval is for a different plan hash: a modified plan needs a new approval" if {
	is_object(input.approval)
	object.get(input.approval, "plan_hash", null) != object.get(input, "plan_hash", null)
}

approval_problems contains "approval must name its approver" if {
	is_object(input.approval)
	not named(object.get(input.approval, "approver", null))
}

approval_problems contains concat("", ["self-approval is not an approval: ", common.show(input.approval.approver), " requested this action"]) if {
	named(input.approval.approver)
	input.approval.approver == input.requested_by
}

named(x) if {
	is_string(x)
	trim_space(x) != ""
}

default approved := false

approved if {
	input.approval.plan_hash == input.plan_hash
	common.plan_hash_ok
	named(input.approval.approver)
	input.approval.approver != object.get(input, "requested_by", null)
}

approval_satisfied if count(needs_approval) == 0

approval_satisfied if approved

default allow := false

allow if {
	count(deny) == 0
	approval_satisfied
	common.well_formed
}

default requires_approval := false

requires_approval if count(needs_approval) > 0

decision := {
	"allow": allow,
	"requires_approval": requires_approval,
	"deny": deny,
	"approval_reasons": needs_approval,
	"approved": approved,
}
