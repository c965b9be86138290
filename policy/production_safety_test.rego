# Tests for production_safety.rego. Inputs are set field by field (see common.rego for why).
package qlrf.gate.production_safety_test

import rego.v1

import data.qlrf.gate.production_safety

full_auto_msg := "production is never full_auto: set the prod autonomy mode to plan_only or canary_only"

window_msg := "production waves run only inside an open maintenance window"

test_prod_is_never_full_auto if {
	full_auto_msg in production_safety.deny with input.environment as "prod" with input.autonomy_mode as "full_auto" with input.action as "plan"
}

test_prod_full_auto_denied_even_for_a_wave_in_the_window if {
	full_auto_msg in production_safety.deny with input.environment as "prod"
		with input.autonomy_mode as "full_auto"
		with input.action as "execute_wave"
		with input.maintenance_window_open as true
}

test_staging_may_be_full_auto if {
	count(production_safety.deny) == 0 with input.environment as "staging"
		with input.autonomy_mode as "full_auto"
		with input.action as "execute_wave"
}

test_prod_wave_needs_open_window if {
	window_msg in production_safety.deny with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.action as "execute_wave"
		with input.maintenance_window_open as false
}

test_prod_wave_window_missing_means_closed if {
	window_msg in production_safety.deny with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.action as "execute_wave"
}

test_prod_wave_window_not_exactly_true_means_closed if {
	window_msg in production_safety.deny with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.action as "execute_wave"
		with input.maintenance_window_open as "yes"
}

test_prod_wave_in_open_window_passes if {
	count(production_safety.deny) == 0 with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.action as "execute_wave"
		with input.maintenance_window_open as true
}

test_prod_rollback_outside_window_passes if {
	count(production_safety.deny) == 0 with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.action as "rollback"
		with input.maintenance_window_open as false
}
