"""Canary analysis on Azure: the Azure driver upgrades a scale set's canary on the ARM fake; Azure
Monitor (REST, same fake) has the baseline's CPU but nothing from the canary, so the plan pauses
for a human, naming the canary VM, with no later wave run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qlrf.remediation.canary.analyst import CanaryAnalyst
from qlrf.remediation.canary.sources.azure_monitor import AzureMonitorSource
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from qlrf.remediation.plans import PatchPlan
from tests.fakes.monitoring import put_azure_metric
from tests.remediation.canary.seed import Telemetry
from tests.remediation.support import NOW, audit_log, kinds
from tests.remediation.test_azure_driver import estate, make_driver, make_plan  # noqa: F401 - the fixture

MINUTES = [NOW - timedelta(minutes=10 - i) for i in range(10)]


def agent(inner, fake) -> Telemetry:
    """After each wave the baseline VMs report CPU to Azure Monitor; the canary reports nothing."""

    def report(plan, index):
        for vm in inner.members(plan, index)[1]:
            put_azure_metric(fake, vm, "Percentage CPU", [(t, 30.0) for t in MINUTES])

    return Telemetry(inner, report)


@pytest.mark.slow
def test_a_silent_canary_pauses_the_scale_set_plan(estate, tmp_path):  # noqa: F811
    fake, sub, vmss, golden = estate
    doc = make_plan(sub, vmss, golden).model_dump(mode="json", exclude={"content_hash"})
    doc["spec"]["canary"] = {"metrics": [{"name": "cpu", "source": "azure_monitor", "metric": "Percentage CPU"}]}
    plan = PatchPlan.model_validate(doc).sealed()
    source = AzureMonitorSource(fake.credential(), base_url=fake.base_url, connection_verify=fake.ca_path, retry_total=0)
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    result = execute_plan(plan, driver=agent(make_driver(fake), fake), gate=Gate.embedded(), audit=audit,
                          requested_by="sensor:drift_findings_sensor", fleet_size=100, now=NOW, poll_interval=0.1,
                          log=lambda _m: None, analyst=CanaryAnalyst({"azure_monitor": source}, now=lambda: NOW))
    assert result.state == "paused", result.reason
    canary = f"{vmss['id']}/virtualMachines/0"
    assert f"cpu: missing: no points for canary target(s) {canary}" in result.reason
    assert "baseline" not in result.reason.split("not enough data to judge:")[1]  # the baseline's ids were found
    analysis = result.waves[0].details["canary_analysis"]
    assert analysis["canary"] == [canary] and len(analysis["baseline"]) == 5
    assert kinds(audit).count("wave_start") == 1 and "rollback" not in kinds(audit)
