# Never change what a VM is (issue 12 item 7): a plan moves each target to a newer version of its
# own image family only. The request builder (qlrf/remediation/gate/request.py) sends the plan's
# `to_family` and `from_families` (the distinct from-family of every target and from-image, null
# where a target carries none). Every wave: each from-family must be named and equal to to_family.
# The planner's previews ask for every wave, so such a plan is proposed as rejected, never pending.
# The read-only `plan` action is not checked (a deny there means "the gate is unusable" to the
# planner, and would retry forever); a rollback restores what was there, so it is never denied.
# Compliance plans (apply_tags, detach_public_ip: policy/compliance.rego) change no image: not checked.
package qlrf.gate.image_family

import rego.v1

import data.qlrf.gate.common
import data.qlrf.gate.compliance

checked_actions := {"execute_wave"}

deny := reasons if {
	input.action in checked_actions
	not compliance.is_compliance_plan
} else := set()

reasons contains "the plan must carry each target's from-family (from_families is missing or empty)" if {
	not has_from_families
}

reasons contains "the plan must name its to-image family (to_family)" if {
	not named(object.get(input, "to_family", null))
}

reasons contains "every target must carry its from-family: a target without one could be any OS" if {
	has_from_families
	some family in input.from_families
	not named(family)
}

reasons contains concat("", ["never change what a VM is: from-family ", common.show(family), " is not the to-family ", common.show(input.to_family)]) if {
	has_from_families
	named(input.to_family)
	some family in input.from_families
	named(family)
	family != input.to_family
}

has_from_families if {
	is_array(input.from_families)
	count(input.from_families) > 0
}

named(x) if {
	is_string(x)
	trim_space(x) != ""
}
