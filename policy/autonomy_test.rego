# Tests for autonomy.rego.
package qlrf.gate.autonomy_test

import rego.v1

import data.qlrf.gate
import data.qlrf.gate.autonomy

test_plan_only_never_executes_a_wave if {
	"autonomy mode plan_only never executes (action execute_wave)" in autonomy.deny with input.autonomy_mode as "plan_only"
		with input.action as "execute_wave"
}

test_plan_only_never_rolls_back if {
	"autonomy mode plan_only never executes (action rollback)" in autonomy.deny with input.autonomy_mode as "plan_only"
		with input.action as "rollback"
}

test_plan_only_may_plan if {
	count(autonomy.deny) == 0 with input.autonomy_mode as "plan_only" with input.action as "plan"
}

test_canary_only_runs_the_canary_without_approval if {
	count(autonomy.deny) + count(autonomy.needs_approval) == 0 with input.autonomy_mode as "canary_only"
		with input.action as "execute_wave"
		with input.wave as 0
		with input.canary as true
}

test_canary_only_later_wave_needs_approval if {
	autonomy.needs_approval == {"canary_only: wave 2 is not the canary wave"} with input.autonomy_mode as "canary_only"
		with input.action as "execute_wave"
		with input.wave as 2
		with input.canary as false
}

test_canary_only_wave_without_canary_flag_needs_approval if {
	count(autonomy.needs_approval) == 1 with input.autonomy_mode as "canary_only"
		with input.action as "execute_wave"
		with input.wave as 0
}

test_full_auto_later_wave_needs_no_approval if {
	count(autonomy.deny) + count(autonomy.needs_approval) == 0 with input.autonomy_mode as "full_auto"
		with input.action as "execute_wave"
		with input.wave as 3
}

test_only_wave_zero_can_be_canary if {
	"only wave 0 can be the canary, got canary wave 1" in autonomy.deny with input.autonomy_mode as "full_auto"
		with input.action as "execute_wave"
		with input.wave as 1
		with input.canary as true
}

test_rollback_needs_no_approval_in_canary_only if {
	count(autonomy.deny) + count(autonomy.needs_approval) == 0 with input.autonomy_mode as "canary_only"
		with input.action as "rollback"
}

# canary_only as the policy says (issue 12 item 5): the canary runs without approval, later waves
# wait for the approval of the plan hash and never run before the canary passed.
test_canary_only_canary_runs_without_approval if {
	d := gate.decision with input.action as "execute_wave"
		with input.to_family as "rhel-9"
		with input.from_families as ["rhel-9"]
		with input.environment as "staging"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "medium"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 2
		with input.wave as 0
		with input.canary as true
		with input.drift_delta as 1
	d.allow == true
	d.requires_approval == false
}

test_canary_only_later_wave_waits_for_the_plan_hash_approval if {
	d := gate.decision with input.action as "execute_wave"
		with input.to_family as "rhel-9"
		with input.from_families as ["rhel-9"]
		with input.environment as "staging"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "medium"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 6
		with input.wave as 1
		with input.canary_passed as true
		with input.drift_delta as 3
	d.allow == false
	d.requires_approval == true
	count(d.deny) == 0
	d.approval_reasons == {"canary_only: wave 1 is not the canary wave"}
}

test_canary_only_later_wave_runs_once_approved_after_a_passed_canary if {
	d := gate.decision with input.action as "execute_wave"
		with input.to_family as "rhel-9"
		with input.from_families as ["rhel-9"]
		with input.environment as "staging"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "medium"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 6
		with input.wave as 2
		with input.canary_passed as true
		with input.drift_delta as 3
		with input.requested_by as "sensor:drift_findings_sensor"
		with input.approval as {"plan_hash": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "approver": "alice"}
	d.allow == true
	d.approved == true
}

test_canary_only_later_wave_never_runs_before_the_canary_passed if {
	d := gate.decision with input.action as "execute_wave"
		with input.to_family as "rhel-9"
		with input.from_families as ["rhel-9"]
		with input.environment as "staging"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "medium"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 6
		with input.wave as 1
		with input.canary_passed as false
		with input.drift_delta as 3
		with input.requested_by as "sensor:drift_findings_sensor"
		with input.approval as {"plan_hash": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "approver": "alice"}
	d.allow == false
	d.deny == {"canary_only: wave 1 runs only after the canary passed its health gate"}
}
