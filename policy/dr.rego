# The dr policy: may a disaster-recovery drill (a sealed DrillPlan, see qlrf/dr/plans.py) run now?
#
# Drills create resources (copied snapshots, images, disks, VMs in the DR target), so every drill
# passes this decision before its first cloud call. Asked at this package's own decision
# (data.qlrf.gate.dr.decision, same shape as the gate's); remediation decisions never pass through it.
# The request is built by qlrf/dr/gate.py:
#
#   action          "run_drill"
#   environment     dev | staging | prod
#   autonomy_mode   plan_only | canary_only | full_auto
#   risk_level      low | medium | high | critical
#   plan_hash       the drill plan's content hash "sha256:<64 hex>"; an approval binds to it
#   targets         number >= 1: VMs the drill restores
#   cleanup         always | on_success | never (the plan's cleanup policy)
#   requested_by    who asks; cannot approve itself
#   approval        {"plan_hash": ..., "approver": ...} once a human approved
#   platform, site, plan_id, target: context for the audit log
#
# Rules:
# * plan_only never runs a drill (dry runs only); full_auto never applies in prod.
# * A drill that keeps its resources (cleanup never) is denied in prod: leftovers cost and confuse.
# * Scope per risk level: low <= 10 VMs, medium <= 50, high <= 200 (more: split the drill).
# * Approval is needed in prod, for high and critical risk, and under canary_only for more than
#   `canary_limit` VMs (default 1: canary_only runs a one-VM drill on its own).
# * Approvals bind the plan hash, name an approver, and never come from the requester.
package qlrf.gate.dr

import rego.v1

import data.qlrf.gate.common

cleanup_policies := {"always", "on_success", "never"}

scope_limits := {"low": 10, "medium": 50, "high": 200, "critical": 200}

default canary_limit := 1

canary_limit := data.qlrf.config.dr.canary_limit

# --- schema -------------------------------------------------------------------------------------

default well_formed := false

well_formed if {
	input.action == "run_drill"
	input.environment in common.environments
	input.autonomy_mode in common.autonomy_modes
	input.risk_level in common.risk_levels
	input.cleanup in cleanup_policies
	common.plan_hash_ok
	common.targets_ok
}

schema_deny := set() if well_formed else := schema_reasons

schema_reasons contains "request must be a JSON object" if not is_object(input)

schema_reasons contains concat("", ["action ", common.show(common.field("action")), " is not run_drill"]) if {
	input.action != "run_drill"
}

schema_reasons contains concat("", ["environment ", common.show(common.field("environment")), " is not one of dev, prod, staging"]) if {
	not input.environment in common.environments
}

schema_reasons contains concat("", ["autonomy_mode ", common.show(common.field("autonomy_mode")), " is not one of ", common.one_of(common.autonomy_modes)]) if {
	not input.autonomy_mode in common.autonomy_modes
}

schema_reasons contains concat("", ["risk_level ", common.show(common.field("risk_level")), " is not one of low, medium, high, critical"]) if {
	not input.risk_level in common.risk_levels
}

schema_reasons contains concat("", ["cleanup ", common.show(common.field("cleanup")), " is not one of always, never, on_success"]) if {
	not input.cleanup in cleanup_policies
}

schema_reasons contains "plan_hash must be the drill plan's sha256:<digest> (71 characters)" if not common.plan_hash_ok

schema_reasons contains concat("", ["targets must be a number >= 1, got ", common.show(common.field("targets"))]) if {
	not common.targets_ok
}

# --- rules --------------------------------------------------------------------------------------

rule_deny contains "plan_only never runs a drill: dry-run it instead" if input.autonomy_mode == "plan_only"

rule_deny contains "full_auto never applies to a drill in prod" if {
	input.autonomy_mode == "full_auto"
	input.environment == "prod"
}

rule_deny contains "a prod drill must clean up after itself: cleanup never is refused in prod" if {
	input.environment == "prod"
	input.cleanup == "never"
}

rule_deny contains concat("", [sprintf("scope of %v VMs is above the limit of %v for risk level ", [input.targets, limit]), input.risk_level, ": split the drill"]) if {
	limit := scope_limits[input.risk_level]
	input.targets > limit
}

needs_approval contains "a drill in prod needs approval" if input.environment == "prod"

needs_approval contains "risk level high or critical always needs approval" if input.risk_level in {"high", "critical"}

needs_approval contains sprintf("canary_only runs at most %v VM(s) without approval", [canary_limit]) if {
	input.autonomy_mode == "canary_only"
	input.targets > canary_limit
}

# --- approval: bound to the plan hash, named, not from the requester ----------------------------

approval_deny := approval_problems if input.approval != null else := set()

approval_problems contains "approval must be an object {plan_hash, approver}" if not is_object(input.approval)

approval_problems contains "approval is for a different plan hash: an edited drill plan needs a new approval" if {
	is_object(input.approval)
	object.get(input.approval, "plan_hash", null) != common.field("plan_hash")
}

approval_problems contains "approval must name its approver" if {
	is_object(input.approval)
	not named(object.get(input.approval, "approver", null))
}

approval_problems contains concat("", ["self-approval is not an approval: ", common.show(input.approval.approver), " requested this drill"]) if {
	named(input.approval.approver)
	input.approval.approver == input.requested_by
}

named(x) if {
	is_string(x)
	trim_space(x) != ""
}

default approved := false

approved if {
	common.plan_hash_ok
	input.approval.plan_hash == input.plan_hash
	named(input.approval.approver)
	input.approval.approver != object.get(input, "requested_by", null)
}

# --- decision -------------------------------------------------------------------------------------

deny := union({schema_deny, rule_deny, approval_deny})

approval_satisfied if count(needs_approval) == 0

approval_satisfied if approved

default allow := false

allow if {
	well_formed
	count(deny) == 0
	approval_satisfied
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
