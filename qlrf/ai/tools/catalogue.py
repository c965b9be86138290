"""The read-only tool catalogue: every tool a conversation may be given, as data."""

from __future__ import annotations

from qlrf.ai.tools import alerts, cost, failover, fleet, images, records, risk
from qlrf.ai.tools.registry import Tool

READ_ONLY_TOOLS: tuple[Tool, ...] = (
    Tool("query_assets", "List VMs of a day (from vm_drift) filtered by platform, site, environment, state and "
         "image family, with their image version and drift status; `matching` counts all hits.",
         fleet.AssetQuery, fleet.query_assets),
    Tool("get_drift_status", "Drift scores per platform x site x environment for a day, or one VM's drift row "
         "(image version, versions/days behind, status, severity).", fleet.ScopeOrVm, fleet.get_drift_status),
    Tool("get_golden_image", "A golden image family in the registry in force: its versions (with parent, for ancestry), "
         "the current version per channel and its revocations.", images.ImageQuery, images.get_golden_image),
    Tool("check_compliance", "Compliance scores per platform x site x environment for a day, or one VM's failed and "
         "waived controls.", fleet.ScopeOrVm, fleet.check_compliance),
    Tool("sbom_query", "Which golden image versions ship a package (optionally in a version range), and which VMs "
         "run them.", images.SbomQuery, images.sbom_query),
    Tool("list_pending_tasks", "Remediation tasks waiting for human approval, oldest first.",
         records.PendingQuery, records.list_pending_tasks, idempotent=False),
    Tool("query_audit", "Recent audit log records, newest first, optionally of one kind or subject.",
         records.AuditQuery, records.query_audit, idempotent=False),
    Tool("get_dr_status", "DR readiness per platform x site x environment for a day, or one VM's restore point, "
         "RPO and gap.", fleet.ScopeOrVm, fleet.get_dr_status),
    Tool("query_alerts", "Recent alert deliveries from the alert ledger, newest first, filtered by kind (source), "
         "channel or literal key prefix; the ledger keeps the last delivery per key and channel, without severity.",
         alerts.AlertQuery, alerts.query_alerts, idempotent=False),
    Tool("simulate_failover", "What if a site (else region, else platform) were lost: affected VMs and groups, capacity "
         "needed at the DR targets vs configured, RTO from measured drills per platform and size class (or unmeasured), "
         "RPO exposure from restore-point age, and groups whose objectives would be breached. Warehouse only.",
         failover.FailoverQuery, failover.simulate_failover),
    Tool("estimate_cost", "Hourly and monthly USD for a scope of VMs (default: running) from the inventory, at the "
         "shipped list prices per platform x instance type; types the table does not know are priced at the "
         "platform default and listed under unknown_instance_types.", cost.CostQuery, cost.estimate_cost),
    Tool("get_risk", "Risk scores (0-100, additive, with the top contributing factors) per platform x site x "
         "environment for a day; or, with asset_id, one VM's score and factors; or, with top, the riskiest VMs in scope.",
         risk.RiskQuery, risk.get_risk),
)
