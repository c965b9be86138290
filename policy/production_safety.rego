# Production safety: production is never full_auto, and production waves run only inside an open
# maintenance window. (An unknown environment is denied by the request schema in common.rego and
# never taken for a safe one: the gate allows only well-formed requests.)
package qlrf.gate.production_safety

import rego.v1

import data.qlrf.gate.common

deny contains "production is never full_auto: set the prod autonomy mode to plan_only or canary_only" if {
	input.autonomy_mode == "full_auto"
	input.environment == "prod"
}

deny contains "production waves run only inside an open maintenance window" if {
	not common.window_open
	input.environment == "prod"
	input.action == "execute_wave"
}
