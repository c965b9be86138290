# Autonomy modes per environment (issue 5): plan_only never executes; canary_only runs the canary
# wave on its own and any later wave only with approval; full_auto runs waves without approval
# unless another policy (risk level) asks for one. Rollback is not a wave: it is allowed in
# canary_only and full_auto without approval, so a failed health gate can always restore the
# previous image; plan_only denies it too (nothing ran there to roll back).
package qlrf.gate.autonomy

import rego.v1

import data.qlrf.gate.common

deny contains concat("", ["autonomy mode plan_only never executes (action ", input.action, ")"]) if {
	input.autonomy_mode == "plan_only"
	common.executes
}

deny contains concat("", ["only wave 0 can be the canary, got canary wave ", common.show(common.field("wave"))]) if {
	input.wave != 0
	common.canary
	input.action == "execute_wave"
}

needs_approval contains concat("", ["canary_only: wave ", common.show(common.field("wave")), " is not the canary wave"]) if {
	not common.canary
	input.autonomy_mode == "canary_only"
	input.action == "execute_wave"
}

# canary_only as the policy says (issue 12 item 5): a later wave runs only after the canary passed its
# health gate, approved or not. The executor sets canary_passed (true only if exactly true): in the
# same run after wave 0, or from the verdict of the canary-only run that preceded the approval.
deny contains concat("", ["canary_only: wave ", common.show(common.field("wave")), " runs only after the canary passed its health gate"]) if {
	input.autonomy_mode == "canary_only"
	input.action == "execute_wave"
	not common.canary
	not input.canary_passed == true
}
