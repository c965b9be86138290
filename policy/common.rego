# The request schema of the action gate: allowed values, shape checks, and safe message helpers.
#
# Written for both OPA and regopy 1.5.2 (rego-cpp), whose quirks shape these habits:
# * Messages never echo a string from the request: rego-cpp 1.5.2 writes strings into its JSON
#   output without escaping them, so a crafted value (a quote in an approver name) could forge
#   fields of the decision. `show(x)` echoes numbers and plain identifiers only, messages are built
#   with concat, and sprintf only ever formats numbers (it also mis-quotes computed strings).
# * Tests set the input field by field (`with input.environment as "prod"`): rego-cpp 1.5.2 fails
#   on `with input as {...}` for most rules ("shape rego-localref has no field rego-refhead").
# * Speed: rego-cpp spends a few microseconds per evaluated condition, and the gate's budget is a
#   few hundred microseconds a decision (issue 4: >= 5,000 decisions/s). So the schema is one
#   memoized rule (`well_formed`) whose detailed reasons are only worked out (lazily, through
#   `else`) for a request that fails it, conditions are ordered to fail fast on the usual
#   request, and there is no regex on the hot path.
package qlrf.gate.common

import rego.v1

environments := {"dev", "staging", "prod"}

autonomy_modes := {"plan_only", "canary_only", "full_auto"}

risk_levels := {"low", "medium", "high", "critical"}

# A plan is read-only (it proposes changes); the other actions change machines.
actions := {"plan", "execute_wave", "rollback"}

mutating_actions := {"execute_wave", "rollback"}

# A field of the request for a message: null when missing (or when the request is not an object).
field(name) := object.get(input, name, null) if is_object(input) else := null

# A value safe to put in a message: a number, a plain identifier in single quotes, or its type.
show(x) := sprintf("%v", [x]) if {
	is_number(x)
} else := concat("", ["'", x, "'"]) if {
	is_string(x)
	regex.match(`^[A-Za-z0-9_.:@-]{1,80}$`, x)
} else := concat("", ["<", type_name(x), ">"])

one_of(values) := concat(", ", sort(values))

executes if input.action in mutating_actions

# Flags are true only when they are exactly true: a missing or odd value takes the safe side
# (not a canary, window closed).
canary if input.canary == true

window_open if input.maintenance_window_open == true

# The plan's content hash: "sha256:" and 64 more characters (checked by length, not by regex:
# a regex costs more than the rest of the schema; approvals compare the hash exactly anyway).
plan_hash_ok if {
	startswith(input.plan_hash, "sha256:")
	count(input.plan_hash) == 71
}

targets_ok if {
	is_number(input.targets)
	input.targets >= 1
}

wave_ok if {
	is_number(input.wave)
	input.wave >= 0
}

# The whole request schema, one memoized rule per action with its conditions inline (the named
# checks above are only used to explain a failure). The gate never allows a request that fails
# it, whatever the deny set says.
default well_formed := false

well_formed if {
	input.action == "execute_wave"
	input.environment in environments
	input.autonomy_mode in autonomy_modes
	input.risk_level in risk_levels
	startswith(input.plan_hash, "sha256:")
	count(input.plan_hash) == 71
	is_number(input.targets)
	input.targets >= 1
	is_number(input.wave)
	input.wave >= 0
}

well_formed if {
	input.action == "plan"
	input.environment in environments
	input.autonomy_mode in autonomy_modes
	input.risk_level in risk_levels
}

well_formed if {
	input.action == "rollback"
	input.environment in environments
	input.autonomy_mode in autonomy_modes
	input.risk_level in risk_levels
	plan_hash_ok
	targets_ok
}

deny := set() if well_formed else := schema_reasons

schema_reasons contains "request must be a JSON object" if not is_object(input)

schema_reasons contains concat("", ["action ", show(field("action")), " is not one of ", one_of(actions)]) if {
	not input.action in actions
}

schema_reasons contains concat("", ["environment ", show(field("environment")), " is not one of ", one_of(environments)]) if {
	not input.environment in environments
}

schema_reasons contains concat("", ["autonomy_mode ", show(field("autonomy_mode")), " is not one of ", one_of(autonomy_modes)]) if {
	not input.autonomy_mode in autonomy_modes
}

schema_reasons contains concat("", ["risk_level ", show(field("risk_level")), " is not one of low, medium, high, critical"]) if {
	not input.risk_level in risk_levels
}

schema_reasons contains "plan_hash must be the plan's sha256:<digest> (71 characters) for an action that changes machines" if {
	executes
	not plan_hash_ok
}

schema_reasons contains concat("", ["targets must be a number >= 1, got ", show(field("targets"))]) if {
	executes
	not targets_ok
}

schema_reasons contains concat("", ["wave must be a number >= 0, got ", show(field("wave"))]) if {
	input.action == "execute_wave"
	not wave_ok
}
