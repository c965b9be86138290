# Tests for policy/ai_task.rego, asked at its own decision (data.qlrf.gate.ai_task.decision).
package qlrf.gate.ai_task_test

import rego.v1

import data.qlrf.gate.ai_task

# (`with` takes literals, one input field at a time: see the note in gate_test.rego.)

test_answer_in_prod_is_allowed_without_approval if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "answer"
		with input.environment as "prod"
		with input.autonomy_mode as null
		with input.risk_level as "high"
		with input.targets as 100000
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d == {"allow": true, "requires_approval": false, "deny": set(), "approval_reasons": set(), "approved": false}
}

test_answer_with_no_environment_is_allowed if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "answer"
		with input.environment as null
		with input.autonomy_mode as null
		with input.risk_level as "low"
		with input.targets as 1001
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.allow == true
	count(d.approval_reasons) == 0
}

test_answer_whose_proposal_set_its_autonomy_is_denied if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "answer"
		with input.environment as "dev"
		with input.autonomy_mode as null
		with input.risk_level as "low"
		with input.targets as 1
		with input.approval_required as false
		with input.proposal_set_autonomy as true
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.allow == false
	d.deny == {"a task may not set its own autonomy mode or approval: the proposal tried, so it is not trusted"}
}

test_compliance_report_in_dev_without_approval_flag_is_allowed if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "compliance_report"
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.targets as 1001
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.allow == true
}

test_compliance_report_in_prod_waits_only_for_the_specs_approval if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "compliance_report"
		with input.environment as "prod"
		with input.autonomy_mode as "plan_only"
		with input.risk_level as "low"
		with input.targets as 3
		with input.approval_required as true
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.allow == false
	d.requires_approval == true
	d.approval_reasons == {"the task spec requires approval (AI tasks wait for a human)"}
	count(d.deny) == 0
}

test_destructive_task_in_prod_needs_approval if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "remediate_drift"
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.targets as 10
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.allow == false
	d.requires_approval == true
	d.approval_reasons == {"a destructive AI task in prod needs approval"}
	count(d.deny) == 0
}

test_destructive_task_with_no_environment_counts_as_prod if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "rebuild_image"
		with input.environment as null
		with input.autonomy_mode as "plan_only"
		with input.risk_level as "low"
		with input.targets as 10
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	"a destructive AI task in prod needs approval" in d.approval_reasons
}

test_approved_destructive_task_in_prod_is_allowed if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "remediate_drift"
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "critical"
		with input.targets as 10
		with input.approval_required as true
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
		with input.approval as {"task_hash": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "approver": "alice"}
	d.allow == true
	d.approved == true
	count(d.approval_reasons) == 3
}

test_approval_of_another_task_hash_is_denied if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "dr_drill"
		with input.environment as "staging"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.targets as 10
		with input.approval_required as true
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:dr"
		with input.approval as {"task_hash": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "approver": "alice"}
	d.allow == false
	d.deny == {"approval is for a different task hash: a changed task needs a new approval"}
}

test_self_approval_is_denied if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "dr_drill"
		with input.environment as "dev"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.targets as 10
		with input.approval_required as true
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "bob"
		with input.approval as {"task_hash": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "approver": "bob"}
	d.allow == false
	d.deny == {"self-approval is not an approval: 'bob' requested this task"}
}

test_critical_risk_always_needs_approval if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "open_incident"
		with input.environment as "dev"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "critical"
		with input.targets as 1
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.requires_approval == true
	d.approval_reasons == {"risk level critical always needs approval"}
}

test_low_risk_scope_above_100_targets_is_denied if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "rightsize"
		with input.environment as "dev"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.targets as 101
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.allow == false
	d.deny == {"scope of 101 targets is above the limit of 100 for risk level low: split the task"}
}

test_low_risk_scope_of_100_targets_is_allowed if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "rightsize"
		with input.environment as "dev"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.targets as 100
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.allow == true
}

test_medium_and_high_limits if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "dr_drill"
		with input.environment as "staging"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "medium"
		with input.targets as 1001
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.deny == {"scope of 1001 targets is above the limit of 1000 for risk level medium: split the task"}
	e := ai_task.decision with input.action as "ai_task"
		with input.task_type as "dr_drill"
		with input.environment as "staging"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "high"
		with input.targets as 10000
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	e.allow == true
}

test_critical_scope_has_no_limit_but_needs_approval if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "dr_drill"
		with input.environment as "staging"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "critical"
		with input.targets as 100000
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	count(d.deny) == 0
	d.requires_approval == true
}

test_read_only_compliance_report_has_no_scope_limit if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "compliance_report"
		with input.environment as "staging"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.targets as 100000
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.allow == true
}

test_full_auto_ai_task_in_prod_is_denied if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "open_incident"
		with input.environment as "prod"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.targets as 1
		with input.approval_required as true
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.allow == false
	"full_auto never applies to an AI task in prod" in d.deny
}

test_full_auto_ai_task_in_dev_is_not_denied_for_it if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "open_incident"
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.targets as 1
		with input.approval_required as false
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.allow == true
}

test_task_that_set_its_own_autonomy_is_denied if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "remediate_drift"
		with input.environment as "dev"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.targets as 1
		with input.approval_required as false
		with input.proposal_set_autonomy as true
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:patch"
	d.allow == false
	d.deny == {"a task may not set its own autonomy mode or approval: the proposal tried, so it is not trusted"}
}

test_missing_fields_are_denied_with_schema_reasons if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "launch_missiles"
	d.allow == false
	"task_type 'launch_missiles' is not one of answer, compliance_report, dr_drill, open_incident, rebuild_image, remediate_drift, rightsize, simulate_failover" in d.deny
	"proposal_set_autonomy must be true or false (whether the proposal tried to set its autonomy)" in d.deny
	"task_hash must be the spec's sha256:<digest> (71 characters)" in d.deny
}

test_tasks_that_change_nothing_have_no_scope_limit if {
	d := ai_task.decision with input.action as "ai_task"
		with input.task_type as "open_incident"
		with input.environment as "prod"
		with input.autonomy_mode as "plan_only"
		with input.risk_level as "low"
		with input.targets as 812
		with input.approval_required as true
		with input.proposal_set_autonomy as false
		with input.task_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "ai:incident"
	count(d.deny) == 0
	d.requires_approval == true
}
