# Tests for the combined decision in gate.rego.
package qlrf.gate.gate_test

import rego.v1

import data.qlrf.gate

# (`with` takes literals: rego-cpp 1.5.2 fails on `with input.x as <rule>`.)

test_prod_canary_in_canary_only_is_allowed if {
	gate.decision == {"allow": true, "requires_approval": false, "deny": set(), "approval_reasons": set(), "approved": false} with input.action as "execute_wave"
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12"]
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 4
		with input.wave as 0
		with input.canary as true
		with input.drift_delta as 1.5
		with input.maintenance_window_open as true
}

test_later_wave_waits_for_approval if {
	d := gate.decision with input.action as "execute_wave"
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12"]
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "low"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 40
		with input.wave as 1
		with input.canary_passed as true
		with input.drift_delta as 8
		with input.maintenance_window_open as true
	d.allow == false
	d.requires_approval == true
	count(d.deny) == 0
}

test_approved_later_wave_is_allowed if {
	d := gate.decision with input.action as "execute_wave"
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12"]
		with input.environment as "prod"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "high"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 40
		with input.wave as 1
		with input.canary_passed as true
		with input.drift_delta as 8
		with input.maintenance_window_open as true
		with input.requested_by as "sensor:drift"
		with input.approval as {"plan_hash": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "approver": "alice"}
	d.allow == true
	d.requires_approval == true
	d.approved == true
}

test_approval_of_another_plan_denies if {
	d := gate.decision with input.action as "execute_wave"
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12"]
		with input.environment as "staging"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "high"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 4
		with input.wave as 1
		with input.drift_delta as 5
		with input.approval as {"plan_hash": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "approver": "alice"}
	d.allow == false
	d.deny == {"approval is for a different plan hash: a modified plan needs a new approval"}
}

test_self_approval_denies if {
	d := gate.decision with input.action as "execute_wave"
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12"]
		with input.environment as "staging"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "critical"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 4
		with input.wave as 1
		with input.drift_delta as 5
		with input.requested_by as "bob"
		with input.approval as {"plan_hash": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "approver": "bob"}
	d.allow == false
	d.approved == false
	d.deny == {"self-approval is not an approval: 'bob' requested this action"}
}

test_high_risk_in_full_auto_needs_approval if {
	d := gate.decision with input.action as "execute_wave"
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12"]
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "high"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 4
		with input.wave as 2
		with input.drift_delta as 5
	d.allow == false
	d.approval_reasons == {"risk level high always needs approval"}
}

test_plan_only_plans_but_never_executes if {
	gate.allow with input.action as "plan"
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12"]
		with input.environment as "prod"
		with input.autonomy_mode as "plan_only"
		with input.risk_level as "critical"
	not gate.allow with input.action as "execute_wave"
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12"]
		with input.environment as "prod"
		with input.autonomy_mode as "plan_only"
		with input.risk_level as "low"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 1
		with input.wave as 0
		with input.canary as true
		with input.drift_delta as 1
		with input.maintenance_window_open as true
}

test_unknown_environment_is_never_allowed if {
	not gate.allow with input.action as "plan"
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12"]
		with input.environment as "PROD"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
}

test_every_reason_is_reported if {
	d := gate.decision with input.action as "execute_wave"
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12"]
		with input.environment as "prod"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 900
		with input.wave as 1
		with input.drift_delta as 30
	d.deny == {
		"production is never full_auto: set the prod autonomy mode to plan_only or canary_only",
		"production waves run only inside an open maintenance window",
		"drift delta 30% exceeds the prod limit of 10%",
	}
}

# Never change what a VM is (image_family.rego): a plan mixing families is denied, as a plan and per wave.
test_mixed_family_plan_is_denied if {
	d := gate.decision with input.action as "execute_wave"
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 4
		with input.wave as 0
		with input.canary as true
		with input.drift_delta as 1
		with input.to_family as "debian-12"
		with input.from_families as ["debian-12", "ubuntu-22.04"]
	d.allow == false
	d.deny == {"never change what a VM is: from-family 'ubuntu-22.04' is not the to-family 'debian-12'"}
}

test_mixed_family_wave_is_denied_even_approved if {
	d := gate.decision with input.action as "execute_wave"
		with input.to_family as "debian-12"
		with input.from_families as ["ubuntu-22.04"]
		with input.environment as "staging"
		with input.autonomy_mode as "canary_only"
		with input.risk_level as "high"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 4
		with input.wave as 1
		with input.canary_passed as true
		with input.drift_delta as 5
		with input.requested_by as "sensor:drift"
		with input.approval as {"plan_hash": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "approver": "alice"}
	d.allow == false
	d.approved == true
	d.deny == {"never change what a VM is: from-family 'ubuntu-22.04' is not the to-family 'debian-12'"}
}

test_target_without_family_is_denied if {
	d := gate.decision with input.action as "execute_wave"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 4
		with input.wave as 1
		with input.drift_delta as 1
		with input.to_family as "debian-12"
		with input.from_families as [null, "debian-12"]
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
	d.allow == false
	d.deny == {"every target must carry its from-family: a target without one could be any OS"}
}

test_wave_without_families_is_denied if {
	d := gate.decision with input.action as "execute_wave"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 4
		with input.wave as 1
		with input.drift_delta as 1
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
	d.allow == false
	d.deny == {
		"the plan must carry each target's from-family (from_families is missing or empty)",
		"the plan must name its to-image family (to_family)",
	}
}

test_rollback_is_never_stopped_by_families if {
	d := gate.decision with input.action as "rollback"
		with input.to_family as "debian-12"
		with input.from_families as ["ubuntu-22.04"]
		with input.environment as "dev"
		with input.autonomy_mode as "full_auto"
		with input.risk_level as "low"
		with input.plan_hash as "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		with input.targets as 4
	d.allow == true
}
