"""Canary analysis on GCP: the GCP driver moves a MIG's canary to the new template on the GCE
fake, Cloud Monitoring (REST, on the same fake) reports the canary's CPU far above the
baseline's, and the executor rolls the canary back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from google.auth.credentials import AnonymousCredentials

from qlrf.inventory.connectors.gcp import GcpConfig
from qlrf.remediation.canary.analyst import CanaryAnalyst
from qlrf.remediation.canary.sources.cloud_monitoring import CloudMonitoringSource
from qlrf.remediation.drivers.gcp import GcpDriver, GcpDriverConfig
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from qlrf.remediation.plans import PatchPlan
from tests.fakes.monitoring import put_gcp_metric
from tests.remediation.canary.seed import Telemetry
from tests.remediation.support import NOW, audit_log, kinds
from tests.remediation.test_gcp_driver import estate, make_plan  # noqa: F401 - the fixture

CPU = "compute.googleapis.com/instance/cpu/utilization"
MINUTES = [NOW - timedelta(minutes=12 - i) for i in range(12)]


def agent(inner: GcpDriver, fake, project: str) -> Telemetry:
    """After each wave every member reports CPU to Cloud Monitoring (canary 0.9, baseline 0.3)."""

    def report(plan, index):
        changed, baseline = inner.members(plan, index)
        for ids, value in ((changed, 0.9), (baseline, 0.3)):
            for iid in ids:
                put_gcp_metric(fake, project, CPU, iid, [(t, value + (n % 3) / 100) for n, t in enumerate(MINUTES)])

    return Telemetry(inner, report)


@pytest.mark.slow
def test_a_hot_canary_on_a_mig_rolls_back(estate, tmp_path):  # noqa: F811
    fake, project, mig, golden = estate
    doc = make_plan(project, mig, golden).model_dump(mode="json", exclude={"content_hash"})
    doc["spec"]["canary"] = {"lookback_seconds": 720, "metrics": [{"name": "cpu", "source": "cloud_monitoring", "metric": CPU}]}
    plan = PatchPlan.model_validate(doc).sealed()
    driver = GcpDriver(GcpDriverConfig(gcp=GcpConfig(api_endpoint=fake.base_url, credentials=AnonymousCredentials()),
                                       operation_poll_initial=0.01, operation_poll_maximum=0.05))
    source = CloudMonitoringSource(project, AnonymousCredentials(), endpoint=fake.base_url)
    audit = audit_log(f"sqlite:///{tmp_path / 'audit.db'}")
    result = execute_plan(plan, driver=agent(driver, fake, project), gate=Gate.embedded(), audit=audit,
                          requested_by="sensor:drift_findings_sensor", fleet_size=100, now=NOW, poll_interval=0.1,
                          log=lambda _m: None, analyst=CanaryAnalyst({"cloud_monitoring": source}, now=lambda: NOW))
    assert result.state == "rolled_back", result.reason
    assert "canary analysis failed after wave 0 (canary)" in result.reason and "cpu (high" in result.reason
    analysis = result.waves[0].details["canary_analysis"]
    assert len(analysis["canary"]) == 1 and len(analysis["baseline"]) == 5  # 10 % of 6, rounded up
    assert analysis["metrics"][0]["n_canary"] == 12 and analysis["metrics"][0]["n_baseline"] == 60
    assert kinds(audit)[4] == "canary_analysis" and "rollback" in kinds(audit)
