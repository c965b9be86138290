# Drift delta: how much of an environment's fleet one wave may change (drift_delta, in % of the
# environment's VMs). A wave above its environment's limit is denied, and a canary wave must also
# stay within the smaller canary limit. Limits are percentages; data overrides them, e.g.
#   {"qlrf": {"config": {"drift_delta_limits": {"prod": 5}, "canary_delta_limits": {"prod": 1}}}}
package qlrf.gate.drift_delta

import rego.v1

import data.qlrf.gate.common

default_limits := {"dev": 50, "staging": 25, "prod": 10}

default_canary_limits := {"dev": 10, "staging": 5, "prod": 2}

limit := data.qlrf.config.drift_delta_limits[input.environment] if {
	is_number(data.qlrf.config.drift_delta_limits[input.environment])
} else := default_limits[input.environment]

canary_limit := data.qlrf.config.canary_delta_limits[input.environment] if {
	is_number(data.qlrf.config.canary_delta_limits[input.environment])
} else := default_canary_limits[input.environment]

valid_delta if {
	is_number(input.drift_delta)
	input.drift_delta >= 0
	input.drift_delta <= 100
}

# Only waves change machines by a share of the fleet (plans propose, rollbacks restore).
deny := wave_reasons if input.action == "execute_wave" else := set()

wave_reasons contains concat("", ["drift_delta must be a number in [0, 100] (% of the environment's fleet), got ", common.show(common.field("drift_delta"))]) if {
	not valid_delta
}

wave_reasons contains concat("", ["drift delta ", common.show(input.drift_delta), "% exceeds the ", input.environment, " limit of ", common.show(limit), "%"]) if {
	input.drift_delta > limit
	valid_delta
}

wave_reasons contains concat("", ["canary wave changes ", common.show(input.drift_delta), "% of ", input.environment, ", above the canary limit of ", common.show(canary_limit), "%"]) if {
	common.canary
	input.drift_delta > canary_limit
	valid_delta
}
