"""The code location: every asset, check, job, schedule, sensor and resource of Resilience Fabric.

Nothing here reads the environment or the network at import time: ``defs`` is built on first
access (what Dagster's loader and the tests do), by :func:`build_definitions`. Building it reads
QLRF_EXECUTOR and which secret variables exist; secret *values* are never read here: they are
bound with ``EnvVar`` and Dagster resolves them when a run starts, showing the variable's name,
never its value. A secret variable that is unset when the definitions load is left unbound (the
field stays None and the resource falls back to its platform's default chain at run time), because
an ``EnvVar`` Dagster cannot resolve fails every run that uses the resource, including the runs of
platforms that were never configured.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
    load_assets_from_package_module,
)

import assets
from assets.partitions import starting_on
from jobs.assets import fleet_job, golden_job, platform_job, quality_job
from jobs.dr import dr_drill_job
from jobs.remediation import remediation_execution_job, remediation_planning_job
from pipelines.executors import executor_config, executor_for
from qlrf.dates import partitions_start
from qlrf.envparse import environ
from qlrf.settings import executor_setting
from resources.alerts import AlertsResource
from resources.azure import AzureResource
from resources.discovery import DiscoveryResource
from resources.estate import EstateResource
from resources.events import EventsResource
from resources.gcp import GcpResource
from resources.llm import LlmResource
from resources.remediation import GateResource, RemediationResource
from resources.vsphere import VsphereResource
from resources.warehouse import WarehouseResource
from sensors import remediation_sensors
from sensors.events import build_event_inbound_sensor
from sensors.schedules import daily_platform_schedule, inventory_quality_schedule

# Sensors' default statuses (see sensors/__init__.py). The one
# that changes machines ships stopped: start it in the UI or with `dagster sensor start remediation_approval_sensor`.
SENSOR_DEFAULT_STATUS = {
    "drift_findings_sensor": DefaultSensorStatus.RUNNING,  # plans and approval tasks only
    "remediation_approval_sensor": DefaultSensorStatus.STOPPED,  # launches executions: opt-in
    "approval_expiry_sensor": DefaultSensorStatus.RUNNING,
    "run_failure_alert_sensor": DefaultSensorStatus.RUNNING,
    "compliance_breach_sensor": DefaultSensorStatus.RUNNING,  # alerts only
    "outbound_events_sensor": DefaultSensorStatus.RUNNING,  # writes events to the outbox only
}


def secret(name: str, env: Mapping[str, str]) -> EnvVar | None:
    """``EnvVar(name)`` when the variable exists now, else None (see the module docstring)."""
    return EnvVar(name) if env.get(name) else None


def resources(env: Mapping[str, str] | None = None) -> dict:
    """Every resource; unset fields resolve from QLRF_* variables when a run starts (README: configuration).

    Secrets are bound with EnvVar here, in one place; everything else a resource needs it reads
    itself at run time (qlrf.envparse), so the code location loads without any credential.
    """
    env = environ(env)
    return {
        "warehouse": WarehouseResource(),
        "estate": EstateResource(),
        # One discovery resource for every platform; AWS takes no secret field (boto3's own chain).
        "discovery": DiscoveryResource(
            azure=AzureResource(client_secret=secret("AZURE_CLIENT_SECRET", env)),
            gcp=GcpResource(credentials_file=secret("GOOGLE_APPLICATION_CREDENTIALS", env)),
            vsphere=VsphereResource(password=secret("QLRF_VSPHERE_PASSWORD", env)),
        ),
        # AI summaries: QLRF_LLM_BASE_URL (unset = rules only), QLRF_LLM_API_KEY / OPENAI_API_KEY, QLRF_LLM_MODEL.
        "llm": LlmResource(api_key=secret("QLRF_LLM_API_KEY", env) or secret("OPENAI_API_KEY", env)),
        # The remediation loop: task store + audit log (QLRF_POSTGRES_URL or SQLite under QLRF_HOME), the Rego
        # gate (QLRF_OPA_URL/QLRF_OPA_TOKEN or embedded) and alert channels (QLRF_ALERT_*, QLRF_SMTP_*).
        "remediation": RemediationResource(database_url=secret("QLRF_POSTGRES_URL", env)),
        "gate": GateResource(opa_token=secret("QLRF_OPA_TOKEN", env)),
        "alerts": AlertsResource(
            webhook_url=secret("QLRF_ALERT_WEBHOOK_URL", env),
            slack_url=secret("QLRF_ALERT_SLACK_URL", env),
            smtp_password=secret("QLRF_SMTP_PASSWORD", env),
        ),
        "events": EventsResource(),  # QLRF_NATS_URL, QLRF_EVENTS_* (qlrf/events/settings.py)
    }


# Evaluates the assets' AutomationConditions (golden images at 00:00, the fleet roll-ups at 06:00 once
# every platform partition is fresh). Dagster's implicit one ships stopped; ours runs so `make serve` works.
automation_sensor = AutomationConditionSensorDefinition(
    "automation_condition_sensor", target=AssetSelection.all(), default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
)

def build_definitions(env: Mapping[str, str] | None = None) -> Definitions:
    """The code location for an environment: QLRF_EXECUTOR picks the executor, QLRF_PARTITIONS_START the
    first daily partition, secrets bind by name."""
    defs = Definitions(
        # Every asset (and its checks) in the assets/ package, found by module scan: no hand-kept list.
        assets=load_assets_from_package_module(assets),
        jobs=[golden_job, platform_job, fleet_job, quality_job, remediation_planning_job, remediation_execution_job,
              dr_drill_job],
        schedules=[daily_platform_schedule, inventory_quality_schedule],
        sensors=[*remediation_sensors(SENSOR_DEFAULT_STATUS), automation_sensor, build_event_inbound_sensor()],
        resources=resources(env),
        executor=executor_for(executor_setting(env), executor_config(env), env),
    )
    return starting_on(defs, partitions_start(env))


@functools.cache
def _process_definitions() -> Definitions:
    return build_definitions()


def __getattr__(name: str) -> Definitions:
    """``defs`` is built on first access (PEP 562), which is when Dagster loads the code location."""
    if name == "defs":
        return _process_definitions()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
