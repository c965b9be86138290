"""Sensors and alerting: the remediation loop's triggers (sensors/findings.py, sensors/approvals.py)
and its alerts (sensors/alerts.py, channels in qlrf/alerts/).

=============================  ========================================================  ===============
sensor                         does                                                      default status
=============================  ========================================================  ===============
drift_findings_sensor          new drift partition -> a planning run per finding         RUNNING
                               (plans and approval tasks only; changes no machine)
remediation_approval_sensor    approved plan -> execution run (run key = plan hash)      STOPPED
                               **changes machines**
approval_expiry_sensor         expires approvals after 24 h, alerts 2 h before           RUNNING
run_failure_alert_sensor       failed run -> alert                                       RUNNING
compliance_breach_sensor       site x env under its compliance floor -> alert            RUNNING
outbound_events_sensor         new inventory / golden_images partition -> events in the  RUNNING
                               outbox (inventory.discovered, image.revoked)
=============================  ========================================================  ===============

The defaults live in pipelines/definitions.py (``SENSOR_DEFAULT_STATUS``), which is configuration in
code: the code location reads no environment at import. A deployment that wants them from its
environment builds its own Definitions with ``sensor_statuses(SENSOR_DEFAULT_STATUS, os.environ)``
and ``QLRF_SENSOR_STATUS="remediation_approval_sensor=running"`` (comma-separated
``name=running|stopped``; an unknown name or status fails, naming the variable). The default status only applies
until someone starts or stops a sensor: the UI's toggle or ``dagster sensor start
remediation_approval_sensor`` / ``dagster sensor stop ...`` win over it and persist in the instance.
"""

from __future__ import annotations

from collections.abc import Mapping

from dagster import DefaultSensorStatus, SensorDefinition

from sensors.alerts import build_run_failure_alert_sensor
from sensors.approvals import build_approval_sensor, build_expiry_sensor
from sensors.compliance import build_compliance_breach_sensor
from sensors.findings import build_drift_findings_sensor
from sensors.outbound import build_outbound_events_sensor

ENV_SENSOR_STATUS = "QLRF_SENSOR_STATUS"
BUILDERS = {
    "drift_findings_sensor": build_drift_findings_sensor,
    "remediation_approval_sensor": build_approval_sensor,
    "approval_expiry_sensor": build_expiry_sensor,
    "run_failure_alert_sensor": build_run_failure_alert_sensor,
    "compliance_breach_sensor": build_compliance_breach_sensor,
    "outbound_events_sensor": build_outbound_events_sensor,
}


def sensor_statuses(defaults: Mapping[str, DefaultSensorStatus], env: Mapping[str, str]) -> dict[str, DefaultSensorStatus]:
    """`defaults` with the ``QLRF_SENSOR_STATUS`` overrides in `env` applied (see the module docstring)."""
    statuses = dict(defaults)
    text = (env.get(ENV_SENSOR_STATUS) or "").strip()
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip().lower()
        if not sep or name not in BUILDERS or value not in ("running", "stopped"):
            raise ValueError(
                f"{ENV_SENSOR_STATUS}: {item!r} is not <sensor>=running|stopped (sensors: {', '.join(BUILDERS)})"
            )
        statuses[name] = DefaultSensorStatus.RUNNING if value == "running" else DefaultSensorStatus.STOPPED
    return statuses


def remediation_sensors(statuses: Mapping[str, DefaultSensorStatus]) -> list[SensorDefinition]:
    """Every sensor of the remediation loop, each with its default status from `statuses`."""
    missing = sorted(set(BUILDERS) - set(statuses))
    if missing:
        raise ValueError(f"no default status for sensor(s) {missing}: ship them explicitly running or stopped")
    return [build(statuses[name]) for name, build in BUILDERS.items()]


__all__ = ["BUILDERS", "ENV_SENSOR_STATUS", "remediation_sensors", "sensor_statuses"]
