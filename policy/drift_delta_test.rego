# Tests for drift_delta.rego.
package qlrf.gate.drift_delta_test

import rego.v1

import data.qlrf.gate.drift_delta

test_prod_wave_above_limit_denied if {
	drift_delta.deny == {"drift delta 12.5% exceeds the prod limit of 10%"} with input.action as "execute_wave"
		with input.environment as "prod"
		with input.drift_delta as 12.5
}

test_prod_wave_at_limit_passes if {
	count(drift_delta.deny) == 0 with input.action as "execute_wave"
		with input.environment as "prod"
		with input.drift_delta as 10
}

test_dev_allows_more_than_prod if {
	count(drift_delta.deny) == 0 with input.action as "execute_wave"
		with input.environment as "dev"
		with input.drift_delta as 40
}

test_staging_limit if {
	"drift delta 30% exceeds the staging limit of 25%" in drift_delta.deny with input.action as "execute_wave"
		with input.environment as "staging"
		with input.drift_delta as 30
}

test_canary_above_canary_limit_denied if {
	drift_delta.deny == {"canary wave changes 3% of prod, above the canary limit of 2%"} with input.action as "execute_wave"
		with input.environment as "prod"
		with input.canary as true
		with input.drift_delta as 3
}

test_missing_delta_denied if {
	drift_delta.deny == {"drift_delta must be a number in [0, 100] (% of the environment's fleet), got <null>"} with input.action as "execute_wave"
		with input.environment as "prod"
}

test_string_delta_denied if {
	count(drift_delta.deny) == 1 with input.action as "execute_wave"
		with input.environment as "prod"
		with input.drift_delta as "5"
}

test_negative_delta_denied if {
	drift_delta.deny == {"drift_delta must be a number in [0, 100] (% of the environment's fleet), got -1"} with input.action as "execute_wave"
		with input.environment as "dev"
		with input.drift_delta as -1
}

test_plan_is_not_limited if {
	count(drift_delta.deny) == 0 with input.action as "plan"
		with input.environment as "prod"
		with input.drift_delta as 80
}

# Limits overridden through data (data.qlrf.config) are tested from Python (tests/remediation/test_gate.py):
# rego-cpp 1.5.2 does not apply `with data.... as` to them.
