"""Remediation execution: run an approved patch plan wave by wave through a platform driver.

``execute_plan`` (qlrf.remediation.executor) is the loop: the Rego gate decides each wave, the
driver changes the machines, the health gate decides whether the next wave may follow, a failing
health gate rolls back and stops the plan, and the audit log records every step. The drivers
(qlrf.remediation.drivers.*) talk to AWS, Azure, GCP and vSphere through their SDKs.

Modules, in the order data flows: policy (the remediation policy, defaults from
policy/remediation.yaml), findings, planner, plans, gate/ (decision, request, modules, embedded,
remote, testing, gate), approvals (task store), audit, calls (CloudCall, CallRecorder), executor,
dryrun, drivers/<platform>, service (what the Dagster ops and the CLI call).
"""

from qlrf.remediation.executor import Driver, ExecutionResult, HealthReport, WaveResult, execute_plan

__all__ = ["Driver", "ExecutionResult", "HealthReport", "WaveResult", "execute_plan"]
