# Tests for terraform.rego: the evidence gate over `terraform show -json` plan files (shapes as Terraform
# writes them: resource_changes[].change.{actions, before, after}). Inputs are set field by field.
package qlrf.terraform_test

import rego.v1

import data.qlrf.terraform

test_replacing_the_expected_resources_with_the_golden_image_passes if {
	count(terraform.deny) == 0 with input.plan as {"format_version": "1.2", "resource_changes": [
		{"address": "aws_instance.web[0]", "change": {"actions": ["delete", "create"], "before": {"ami": "ami-old"}, "after": {"ami": "ami-gold"}}},
		{"address": "aws_instance.web[1]", "change": {"actions": ["update"], "before": {"ami": "ami-old"}, "after": {"ami": "ami-gold"}}},
		{"address": "aws_security_group.web", "change": {"actions": ["no-op"], "before": {}, "after": {}}},
	]}
		with input.expected as {"resources": ["aws_instance.web[0]", "aws_instance.web[1]"], "image_attribute": "ami", "image": "ami-gold"}
}

test_another_image_is_refused if {
	"resource_changes[0]: the image attribute after the change is not the golden image" in terraform.deny with input.plan as {"format_version": "1.2", "resource_changes": [
		{"address": "aws_instance.web[0]", "change": {"actions": ["delete", "create"], "before": {"ami": "ami-old"}, "after": {"ami": "ami-other"}}},
	]}
		with input.expected as {"resources": ["aws_instance.web[0]"], "image_attribute": "ami", "image": "ami-gold"}
}

test_an_unexpected_resource_change_is_refused if {
	"resource_changes[1]: changes a resource the patch does not touch (only the expected resources may change)" in terraform.deny with input.plan as {"format_version": "1.2", "resource_changes": [
		{"address": "aws_instance.web[0]", "change": {"actions": ["update"], "before": {"ami": "ami-old"}, "after": {"ami": "ami-gold"}}},
		{"address": "aws_db_instance.main", "change": {"actions": ["update"], "before": {}, "after": {}}},
	]}
		with input.expected as {"resources": ["aws_instance.web[0]"], "image_attribute": "ami", "image": "ami-gold"}
}

test_a_deletion_is_refused_even_of_an_expected_resource if {
	"resource_changes[0]: deletes a resource without re-creating it" in terraform.deny with input.plan as {"format_version": "1.2", "resource_changes": [
		{"address": "aws_instance.web[0]", "change": {"actions": ["delete"], "before": {"ami": "ami-old"}, "after": null}},
	]}
		with input.expected as {"resources": ["aws_instance.web[0]"], "image_attribute": "ami", "image": "ami-gold"}
}

test_an_expected_resource_left_alone_is_refused if {
	"expected.resources[1]: the plan does not change this expected resource" in terraform.deny with input.plan as {"format_version": "1.2", "resource_changes": [
		{"address": "aws_instance.web[0]", "change": {"actions": ["update"], "before": {"ami": "ami-old"}, "after": {"ami": "ami-gold"}}},
	]}
		with input.expected as {"resources": ["aws_instance.web[0]", "aws_instance.web[1]"], "image_attribute": "ami", "image": "ami-gold"}
}

test_not_a_plan_file_is_refused if {
	"the plan file has no format_version: not `terraform show -json` output" in terraform.deny with input.plan as {"resource_changes": []}
		with input.expected as {"resources": ["aws_instance.web[0]"], "image_attribute": "ami", "image": "ami-gold"}
}

test_an_errored_plan_is_refused if {
	"the plan file says errored: true (terraform could not make the plan)" in terraform.deny with input.plan as {"format_version": "1.2", "errored": true, "resource_changes": [
		{"address": "aws_instance.web[0]", "change": {"actions": ["update"], "before": {"ami": "ami-old"}, "after": {"ami": "ami-gold"}}},
	]}
		with input.expected as {"resources": ["aws_instance.web[0]"], "image_attribute": "ami", "image": "ami-gold"}
}

test_the_decision_allows_only_without_reasons if {
	d := terraform.decision with input.plan as {"format_version": "1.2", "resource_changes": []}
		with input.expected as {"resources": ["aws_instance.web[0]"], "image_attribute": "ami", "image": "ami-gold"}
	d.allow == false
	count(d.deny) == 1
}
