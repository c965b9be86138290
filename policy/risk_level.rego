# Risk level: every request states one of low, medium, high, critical (the request schema in
# common.rego denies anything else); high and critical waves always need a human approval,
# whatever the autonomy mode.
package qlrf.gate.risk_level

import rego.v1

approval_levels := {"high", "critical"}

needs_approval contains concat("", ["risk level ", input.risk_level, " always needs approval"]) if {
	input.risk_level in approval_levels
	input.action == "execute_wave"
}
