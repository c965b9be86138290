# The Terraform evidence gate (issue 12 item 4), conftest style: a Terraform-managed plan is delivered as a
# change to the Terraform code, and a human sends back the `terraform show -json` plan file made from it.
# This policy checks that plan file before its sha256 may be bound to an approval.
#
# Input (built by qlrf/remediation/tf_evidence.py):
#   plan      the `terraform show -json` document (format_version, resource_changes[].change.{actions,before,after})
#   expected  {"resources": [addresses the patch is about], "image_attribute": "ami", "image": "<golden image>"}
#
# The plan may only update or replace the expected resources, each with the image attribute set to the
# golden image; nothing else may change, nothing may be deleted, every expected resource must change.
# Messages name resource_changes[i] / expected.resources[k] by index (never echo a string from the
# plan: see common.rego); the caller adds the addresses.
package qlrf.terraform

import rego.v1

quiet_actions := {["no-op"], ["read"]}

allowed_actions := {["update"], ["delete", "create"], ["create", "delete"]}

changes := object.get(input.plan, "resource_changes", null)

deny contains "the plan file has no format_version: not `terraform show -json` output" if {
	not is_string(object.get(input.plan, "format_version", null))
}

deny contains "the plan file has no resource_changes list: not `terraform show -json` output" if {
	not is_array(changes)
}

deny contains "the plan file says errored: true (terraform could not make the plan)" if {
	object.get(input.plan, "errored", false) == true
}

deny contains "the gate needs the golden image and the expected resources" if {
	not is_string(object.get(input.expected, "image", null))
}

deny contains "the gate needs the golden image and the expected resources" if {
	count(object.get(input.expected, "resources", [])) == 0
}

expected_set := {a | some a in input.expected.resources}

actions(rc) := object.get(object.get(rc, "change", {}), "actions", null)

changing(rc) if not actions(rc) in quiet_actions

deny contains sprintf("resource_changes[%d]: changes a resource the patch does not touch (only the expected resources may change)", [i]) if {
	some i, rc in changes
	changing(rc)
	not rc.address in expected_set
}

deny contains sprintf("resource_changes[%d]: deletes a resource without re-creating it", [i]) if {
	some i, rc in changes
	actions(rc) == ["delete"]
}

deny contains sprintf("resource_changes[%d]: an expected resource may only be updated or replaced (its actions are neither)", [i]) if {
	some i, rc in changes
	rc.address in expected_set
	changing(rc)
	not actions(rc) in allowed_actions
}

deny contains sprintf("resource_changes[%d]: the image attribute after the change is not the golden image", [i]) if {
	some i, rc in changes
	rc.address in expected_set
	actions(rc) in allowed_actions
	object.get(object.get(rc.change, "after", {}), input.expected.image_attribute, null) != input.expected.image
}

deny contains sprintf("expected.resources[%d]: the plan does not change this expected resource", [k]) if {
	some k, address in input.expected.resources
	is_array(changes)
	not changed_addresses[address]
}

changed_addresses contains rc.address if {
	some rc in changes
	actions(rc) in allowed_actions
}

decision := {
	"allow": count(deny) == 0,
	"requires_approval": false,
	"deny": deny,
	"approval_reasons": set(),
	"approved": false,
}
