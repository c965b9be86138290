"""The code location: every asset, check, job, schedule, sensor and resource of Resilience Fabric.

Nothing here reads the environment or the network at import time: resources are bound with
EnvVar, resolved by Dagster when a run starts.
"""

from __future__ import annotations

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
    in_process_executor,
    load_assets_from_package_module,
)

import assets
from assets.jobs import fleet_job, golden_job, platform_job, quality_job
from pipelines.remediation_jobs import remediation_execution_job, remediation_planning_job
from resources.alerts import AlertsResource
from resources.aws import AwsResource
from resources.azure import AzureResource
from resources.estate import EstateResource
from resources.gcp import GcpResource
from resources.llm import LlmResource
from resources.remediation import GateResource, RemediationResource
from resources.vsphere import VsphereResource
from resources.warehouse import WarehouseResource
from sensors import remediation_sensors
from sensors.schedules import daily_platform_schedule, inventory_quality_schedule

# Sensors' default statuses (see sensors/__init__.py). The one
# that changes machines ships stopped: start it in the UI or with `dagster sensor start remediation_approval_sensor`.
SENSOR_DEFAULT_STATUS = {
    "drift_findings_sensor": DefaultSensorStatus.RUNNING,  # plans and approval tasks only
    "remediation_approval_sensor": DefaultSensorStatus.STOPPED,  # launches executions: opt-in
    "approval_expiry_sensor": DefaultSensorStatus.RUNNING,
    "run_failure_alert_sensor": DefaultSensorStatus.RUNNING,
    "compliance_breach_sensor": DefaultSensorStatus.RUNNING,  # alerts only
}


def resources() -> dict:
    """Unset fields resolve from QLRF_* env vars when a run starts (qlrf.settings; README: configuration)."""
    return {
        "warehouse": WarehouseResource(),
        "estate": EstateResource(),
        # Live connectors read their settings and secrets (AWS chain, AZURE_CLIENT_SECRET,
        # GOOGLE_APPLICATION_CREDENTIALS, QLRF_VSPHERE_PASSWORD) from the environment when a run calls
        # them, so the code location loads without any credential.
        "aws": AwsResource(),
        "azure": AzureResource(),
        "gcp": GcpResource(),
        "vsphere": VsphereResource(),
        # AI summaries: QLRF_LLM_BASE_URL (unset = rules only), QLRF_LLM_API_KEY / OPENAI_API_KEY, QLRF_LLM_MODEL.
        "llm": LlmResource(),
        # The remediation loop: task store + audit log (QLRF_POSTGRES_URL or SQLite under QLRF_HOME), the Rego
        # gate (QLRF_OPA_URL/QLRF_OPA_TOKEN or embedded) and alert channels (QLRF_ALERT_*, QLRF_SMTP_*).
        "remediation": RemediationResource(),
        "gate": GateResource(),
        "alerts": AlertsResource(),
    }


# Evaluates the assets' AutomationConditions (golden images at 00:00, the fleet roll-ups at 06:00 once
# every platform partition is fresh). Dagster's implicit one ships stopped; ours runs so `make serve` works.
automation_sensor = AutomationConditionSensorDefinition(
    "automation_condition_sensor", target=AssetSelection.all(), default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)

defs = Definitions(
    # Every asset (and its checks) in the assets/ package, found by module scan: no hand-kept list.
    assets=load_assets_from_package_module(assets),
    jobs=[golden_job, platform_job, fleet_job, quality_job, remediation_planning_job, remediation_execution_job],
    schedules=[daily_platform_schedule, inventory_quality_schedule],
    sensors=[*remediation_sensors(SENSOR_DEFAULT_STATUS), automation_sensor],
    resources=resources(),
    executor=in_process_executor,
)
