# Tests for policy/dr.rego, asked at its own decision (data.qlrf.gate.dr.decision).
package qlrf.gate.dr_test

import rego.v1

import data.qlrf.gate.dr

# (`with` takes literals, one input field at a time: see the note in gate_test.rego.)

test_small_staging_drill_runs_without_approval if {
	d := dr.decision with input.action as "run_drill"
		with input.environment as "staging"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "medium"
		with input.cleanup as "always"
		with input.targets as 10
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "cli:alice"
	d == {"allow": true, "requires_approval": false, "deny": set(), "approval_reasons": set(), "approved": false}
}

test_prod_drill_waits_for_approval if {
	d := dr.decision with input.action as "run_drill"
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "medium"
		with input.cleanup as "always"
		with input.targets as 3
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "cli:alice"
	d.allow == false
	d.requires_approval == true
	count(d.deny) == 0
	"a drill in prod needs approval" in d.approval_reasons
}

test_prod_drill_runs_with_an_approval_of_its_hash if {
	d := dr.decision with input.action as "run_drill"
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "medium"
		with input.cleanup as "always"
		with input.targets as 3
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "cli:alice"
		with input.approval.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.approval.approver as "bob"
	d.allow == true
	d.approved == true
}

test_approval_of_another_hash_is_refused if {
	d := dr.decision with input.action as "run_drill"
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "medium"
		with input.cleanup as "always"
		with input.targets as 3
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "cli:alice"
		with input.approval.plan_hash as "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
		with input.approval.approver as "bob"
	d.allow == false
	"approval is for a different plan hash: an edited drill plan needs a new approval" in d.deny
}

test_self_approval_is_refused if {
	d := dr.decision with input.action as "run_drill"
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "medium"
		with input.cleanup as "always"
		with input.targets as 3
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "alice"
		with input.approval.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.approval.approver as "alice"
	d.allow == false
	d.approved == false
}

test_plan_only_never_runs_a_drill if {
	d := dr.decision with input.action as "run_drill"
		with input.environment as "dev"
		with input.autonomy_mode as "plan_only"
		with input.risk_level as "low"
		with input.cleanup as "always"
		with input.targets as 1
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "cli:alice"
	d.allow == false
	"plan_only never runs a drill: dry-run it instead" in d.deny
}

test_prod_drill_that_keeps_its_resources_is_denied if {
	d := dr.decision with input.action as "run_drill"
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "medium"
		with input.cleanup as "never"
		with input.targets as 1
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "cli:alice"
	d.allow == false
	"a prod drill must clean up after itself: cleanup never is refused in prod" in d.deny
}

test_scope_above_the_risk_limit_is_denied if {
	d := dr.decision with input.action as "run_drill"
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.cleanup as "always"
		with input.targets as 11
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "cli:alice"
	d.allow == false
	"scope of 11 VMs is above the limit of 10 for risk level low: split the drill" in d.deny
}

test_canary_only_needs_approval_beyond_one_vm if {
	d := dr.decision with input.action as "run_drill"
		with input.environment as "dev"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.cleanup as "always"
		with input.targets as 2
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.requested_by as "cli:alice"
	d.allow == false
	d.requires_approval == true
	"canary_only runs at most 1 VM(s) without approval" in d.approval_reasons
}

test_ill_formed_request_is_denied_naming_the_field if {
	d := dr.decision with input.action as "run_drill"
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.cleanup as "sometimes"
		with input.targets as 1
		with input.plan_hash as "sha256:short"
		with input.requested_by as "cli:alice"
	d.allow == false
	"cleanup 'sometimes' is not one of always, never, on_success" in d.deny
	"plan_hash must be the drill plan's sha256:<digest> (71 characters)" in d.deny
}
