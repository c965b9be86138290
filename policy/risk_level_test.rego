# Tests for risk_level.rego (the set of known levels is checked in common_test.rego).
package qlrf.gate.risk_level_test

import rego.v1

import data.qlrf.gate.risk_level

test_high_risk_wave_needs_approval if {
	risk_level.needs_approval == {"risk level high always needs approval"} with input.risk_level as "high"
		with input.action as "execute_wave"
}

test_critical_risk_wave_needs_approval if {
	risk_level.needs_approval == {"risk level critical always needs approval"} with input.risk_level as "critical"
		with input.action as "execute_wave"
}

test_medium_risk_wave_needs_no_approval if {
	count(risk_level.needs_approval) == 0 with input.risk_level as "medium" with input.action as "execute_wave"
}

test_high_risk_plan_needs_no_approval_to_be_proposed if {
	count(risk_level.needs_approval) == 0 with input.risk_level as "high" with input.action as "plan"
}
