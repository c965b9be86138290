# Tests for compliance.rego (and its wiring into the gate's decision). Inputs are set field by field
# (see common.rego for why).
package qlrf.gate.compliance_test

import rego.v1

import data.qlrf.gate
import data.qlrf.gate.compliance

detach_msg := "detaching a public IP from a production VM always needs a human approval"


test_prod_detach_needs_approval_even_for_the_canary if {
	detach_msg in compliance.needs_approval with input.plan_type as "detach_public_ip"
		with input.environment as "prod"
		with input.action as "execute_wave"
		with input.wave as 0
		with input.canary as true
}

test_prod_detach_not_allowed_without_approval_in_canary_only if {
	d := gate.decision with input.action as "execute_wave"
		with input.plan_type as "detach_public_ip"
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.plan_hash as "sha256:0000000000000000000000000000000000000000000000000000000000000000"
		with input.targets as 1
		with input.wave as 0
		with input.canary as true
		with input.drift_delta as 0.1
		with input.maintenance_window_open as true
		with input.requested_by as "sensor:compliance"
	d.allow == false
	d.requires_approval == true
	detach_msg in d.approval_reasons
}

test_prod_detach_allowed_with_approval_of_its_hash if {
	d := gate.decision with input.action as "execute_wave"
		with input.plan_type as "detach_public_ip"
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "high"
		with input.plan_hash as "sha256:0000000000000000000000000000000000000000000000000000000000000000"
		with input.targets as 1
		with input.wave as 0
		with input.canary as true
		with input.drift_delta as 0.1
		with input.maintenance_window_open as true
		with input.requested_by as "sensor:compliance"
		with input.approval as {"plan_hash": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "approver": "alice"}
	d.allow == true
}

test_staging_detach_needs_no_extra_approval if {
	count(compliance.needs_approval) == 0 with input.plan_type as "detach_public_ip"
		with input.environment as "staging"
		with input.action as "execute_wave"
}

test_apply_tags_needs_no_extra_approval if {
	count(compliance.needs_approval) == 0 with input.plan_type as "apply_tags"
		with input.environment as "prod"
		with input.action as "execute_wave"
}

test_unknown_plan_type_denied if {
	some msg in compliance.deny with input.plan_type as "delete_vm"
	startswith(msg, "unknown plan_type")
}

test_missing_plan_type_is_reimage if {
	count(compliance.deny) == 0 with input.environment as "prod"
}

test_compliance_plans_skip_the_image_family_rule if {
	d := gate.decision with input.action as "execute_wave"
		with input.plan_type as "apply_tags"
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.plan_hash as "sha256:0000000000000000000000000000000000000000000000000000000000000000"
		with input.targets as 1
		with input.wave as 0
		with input.canary as true
		with input.drift_delta as 0.1
		with input.from_families as []
		with input.requested_by as "sensor:compliance"
	d.allow == true
}

test_reimage_still_needs_families if {
	d := gate.decision with input.action as "execute_wave"
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.plan_hash as "sha256:0000000000000000000000000000000000000000000000000000000000000000"
		with input.targets as 1
		with input.wave as 0
		with input.canary as true
		with input.drift_delta as 0.1
		with input.from_families as []
		with input.requested_by as "sensor:compliance"
	d.allow == false
}

test_terraform_delivery_always_needs_approval if {
	d := gate.decision with input.action as "execute_wave"
		with input.delivery as "terraform"
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.plan_hash as "sha256:0000000000000000000000000000000000000000000000000000000000000000"
		with input.targets as 1
		with input.wave as 0
		with input.canary as true
		with input.drift_delta as 0.1
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12"]
		with input.requested_by as "sensor:drift"
	d.allow == false
	d.requires_approval == true
}

test_compliance_plan_cannot_be_terraform_delivered if {
	count(compliance.deny) == 1 with input.plan_type as "apply_tags" with input.delivery as "terraform"
}
