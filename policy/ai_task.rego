# The ai_task policy: may an AI task (a sealed TaskSpec, see qlrf/ai/taskspec.py) go ahead?
#
# Asked at this package's own `decision` (data.qlrf.gate.ai_task.decision, same shape as the gate's;
# remediation decisions never pass through it). The request is built by qlrf/ai/validation.py:
#
#   action               "ai_task"
#   task_type            answer | remediate_drift | rebuild_image | dr_drill | simulate_failover |
#                        compliance_report | open_incident | rightsize
#   environment          dev | staging | prod | null (no environment filter: prod is in scope)
#   autonomy_mode        plan_only | canary_only | full_auto | null (null for an answer)
#   risk_level           low | medium | high | critical (the spec's, never lower than the rule)
#   targets              number >= 0: the scope's size (an unresolved scope counts as large)
#   approval_required    the spec's flag: policy may add approval, never take it away
#   proposal_set_autonomy  true when the model's proposal tried to set autonomy or approval itself
#   task_hash            the spec's content hash "sha256:<64 hex>"; an approval binds to it
#   requested_by         who or what asks; cannot approve itself
#   approval             {"task_hash": ..., "approver": ...} once a human approved
#
# Rules (deny reasons and approval reasons are data, as in the other gate packages):
# * An `answer` reads and acts on nothing: it is allowed and never needs approval, whatever its
#   scope, risk or environment. The one exception is a proposal that tried to set its own autonomy:
#   that proposal is not trusted, whatever it asks for.
# * A task never sets its own autonomy mode (or approval): deny when the proposal tried.
# * `full_auto` never applies to an AI task in prod.
# * Destructive tasks (every type but answer and compliance_report) in prod need approval.
# * Blast radius per risk level, for tasks that change VMs or images (remediate_drift,
#   rebuild_image, dr_drill, rightsize): low <= 100 targets, medium <= 1000, high <= 10000 (more is
#   denied: split the task); critical always needs approval. The limits are the planner's own risk
#   steps (more than 100 targets is at least medium, more than 1000 high), so a task only hits a
#   limit when its stated risk is too low for its size. Tasks that change nothing (an incident, a
#   failover simulation, a report) may name any number of VMs.
# * Undefined is deny (the gate treats an undefined decision so); an ill-formed request is denied
#   with its schema reasons and never allowed.
package qlrf.gate.ai_task

import rego.v1

import data.qlrf.gate.common

task_types := {
	"answer", "remediate_drift", "rebuild_image", "dr_drill", "simulate_failover",
	"compliance_report", "open_incident", "rightsize",
}

read_only_types := {"answer", "compliance_report"}

changing_types := {"remediate_drift", "rebuild_image", "dr_drill", "rightsize"}

scope_limits := {"low": 100, "medium": 1000, "high": 10000}

# No environment filter means every environment, prod included.
in_prod if input.environment == "prod"

in_prod if input.environment == null

destructive if {
	input.task_type in task_types
	not input.task_type in read_only_types
}

is_answer if input.task_type == "answer"

# --- schema -------------------------------------------------------------------------------------

default well_formed := false

well_formed if {
	input.action == "ai_task"
	input.task_type in task_types
	environment_ok
	autonomy_ok
	input.risk_level in common.risk_levels
	is_number(input.targets)
	input.targets >= 0
	is_boolean(input.approval_required)
	is_boolean(input.proposal_set_autonomy)
	task_hash_ok
}

environment_ok if input.environment in common.environments

environment_ok if input.environment == null

autonomy_ok if input.autonomy_mode in common.autonomy_modes

autonomy_ok if {
	is_answer
	input.autonomy_mode == null
}

task_hash_ok if {
	startswith(input.task_hash, "sha256:")
	count(input.task_hash) == 71
}

schema_deny := set() if well_formed else := schema_reasons

schema_reasons contains "request must be a JSON object" if not is_object(input)

schema_reasons contains concat("", ["task_type ", common.show(common.field("task_type")), " is not one of ", common.one_of(task_types)]) if {
	not input.task_type in task_types
}

schema_reasons contains concat("", ["environment ", common.show(common.field("environment")), " is not one of dev, prod, staging or null"]) if {
	not environment_ok
}

schema_reasons contains concat("", ["autonomy_mode ", common.show(common.field("autonomy_mode")), " is not one of ", common.one_of(common.autonomy_modes), " (null only for an answer)"]) if {
	not autonomy_ok
}

schema_reasons contains concat("", ["risk_level ", common.show(common.field("risk_level")), " is not one of low, medium, high, critical"]) if {
	not input.risk_level in common.risk_levels
}

schema_reasons contains concat("", ["targets must be a number >= 0, got ", common.show(common.field("targets"))]) if {
	not targets_ok
}

schema_reasons contains "approval_required must be true or false" if not is_boolean(input.approval_required)

schema_reasons contains "proposal_set_autonomy must be true or false (whether the proposal tried to set its autonomy)" if {
	not is_boolean(input.proposal_set_autonomy)
}

schema_reasons contains "task_hash must be the spec's sha256:<digest> (71 characters)" if not task_hash_ok

targets_ok if {
	is_number(input.targets)
	input.targets >= 0
}

# --- rules --------------------------------------------------------------------------------------

rule_deny contains "a task may not set its own autonomy mode or approval: the proposal tried, so it is not trusted" if {
	input.proposal_set_autonomy == true
}

rule_deny contains "full_auto never applies to an AI task in prod" if {
	not is_answer
	input.autonomy_mode == "full_auto"
	in_prod
}

rule_deny contains concat("", [sprintf("scope of %v targets is above the limit of %v for risk level ", [input.targets, limit]), level, ": split the task"]) if {
	input.task_type in changing_types
	level := input.risk_level
	limit := scope_limits[level]
	input.targets > limit
}

needs_approval contains "a destructive AI task in prod needs approval" if {
	destructive
	in_prod
}

needs_approval contains "risk level critical always needs approval" if {
	not is_answer
	input.risk_level == "critical"
}

needs_approval contains "the task spec requires approval (AI tasks wait for a human)" if {
	not is_answer
	input.approval_required == true
}

# --- approval: bound to the spec's content hash, named, not from the requester ------------------

approval_deny := approval_problems if input.approval != null else := set()

approval_problems contains "approval must be an object {task_hash, approver}" if not is_object(input.approval)

approval_problems contains "approval is for a different task hash: a changed task needs a new approval" if {
	is_object(input.approval)
	object.get(input.approval, "task_hash", null) != common.field("task_hash")
}

approval_problems contains "approval must name its approver" if {
	is_object(input.approval)
	not named(object.get(input.approval, "approver", null))
}

approval_problems contains concat("", ["self-approval is not an approval: ", common.show(input.approval.approver), " requested this task"]) if {
	named(input.approval.approver)
	input.approval.approver == input.requested_by
}

named(x) if {
	is_string(x)
	trim_space(x) != ""
}

default approved := false

approved if {
	task_hash_ok
	input.approval.task_hash == input.task_hash
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
