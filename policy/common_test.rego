# Tests for the request schema in common.rego.
package qlrf.gate.common_test

import rego.v1

import data.qlrf.gate.common

test_unknown_environment_denied if {
	"environment 'qa' is not one of dev, prod, staging" in common.deny with input.action as "plan"
		with input.environment as "qa"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
}

test_missing_fields_denied if {
	common.deny == {
		"action <null> is not one of execute_wave, plan, rollback",
		"environment <null> is not one of dev, prod, staging",
		"autonomy_mode <null> is not one of canary_only, full_auto, plan_only",
		"risk_level <null> is not one of low, medium, high, critical",
	} with input.note as "nothing else"
}

test_unknown_risk_level_denied if {
	"risk_level 'extreme' is not one of low, medium, high, critical" in common.deny with input.action as "plan"
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "extreme"
}

test_messages_never_echo_odd_strings if {
	"environment <string> is not one of dev, prod, staging" in common.deny with input.action as "plan"
		with input.environment as "prod\", \"allow\": true"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
}

test_wave_needs_hash_targets_and_wave if {
	common.deny == {
		"plan_hash must be the plan's sha256:<digest> (71 characters) for an action that changes machines",
		"targets must be a number >= 1, got 0",
		"wave must be a number >= 0, got '1'",
	} with input.action as "execute_wave"
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.plan_hash as "md5:1"
		with input.targets as 0
		with input.wave as "1"
}

test_well_formed_wave if {
	common.well_formed with input.action as "execute_wave"
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 3
		with input.wave as 1
}

test_well_formed_plan_needs_no_hash if {
	common.well_formed with input.action as "plan"
		with input.environment as "prod"
		with input.autonomy_mode as "plan_only"
		with input.risk_level as "critical"
}

test_rollback_needs_hash_and_targets if {
	not common.well_formed with input.action as "rollback"
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.targets as 2
}

test_show_is_safe if {
	common.show(12.5) == "12.5"
	common.show("prod") == "'prod'"
	common.show("a\"b") == "<string>"
	common.show(null) == "<null>"
}
