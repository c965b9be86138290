# Compliance plans (issue 12 item 6): fixes re-imaging cannot make get their own plan types, decided
# by the same gate as re-imaging plans. The request builder (qlrf/remediation/gate/request.py) sends
# `plan_type`: reimage | apply_tags | detach_public_ip (missing = reimage, as before the field existed).
#
# * An unknown plan type is denied: a type the policies do not know has no rules yet.
# * Detaching a public IP from a production VM ALWAYS needs a human approval of the plan hash, in every
#   wave (the canary too, whatever the autonomy mode: cutting a prod VM off the internet can take a
#   service down that nobody knew was reached directly).
# * A Terraform-managed plan (`delivery: terraform`) is never changed through the cloud API: it always
#   needs a human approval, which the task store binds to the hash of the checked `terraform show -json`
#   plan file (policy/terraform.rego checks that file); the executor refuses to run such a plan.
package qlrf.gate.compliance

import rego.v1

import data.qlrf.gate.common

plan_types := {"reimage", "apply_tags", "detach_public_ip"}

compliance_types := {"apply_tags", "detach_public_ip"}

plan_type := object.get(input, "plan_type", "reimage") if is_object(input) else := "reimage"

is_compliance_plan if plan_type in compliance_types

deny contains concat("", ["unknown plan_type ", common.show(plan_type), ": expected one of ", common.one_of(plan_types)]) if {
	not plan_type in plan_types
}

deny contains "compliance plans are made through the cloud API: a plan cannot be both a compliance fix and Terraform-delivered" if {
	is_compliance_plan
	object.get(input, "delivery", null) == "terraform"
}

needs_approval contains "detaching a public IP from a production VM always needs a human approval" if {
	plan_type == "detach_public_ip"
	input.environment == "prod"
	input.action in common.mutating_actions
}

needs_approval contains "Terraform-managed: a human approves the plan with the hash of its checked terraform plan file" if {
	object.get(input, "delivery", null) == "terraform"
	input.action in common.mutating_actions
}
