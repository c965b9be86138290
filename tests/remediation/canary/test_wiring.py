"""The service's default analyst: a canary section in the remediation policy reaches the
canary_only run (Dagster job / CLI path) with sources built from the environment, and a plan
without one executes exactly as before."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.canary.wiring import EnvAnalyst
from qlrf.remediation.gate import Gate
from qlrf.remediation.policy import RemediationPolicy
from qlrf.remediation.service import plan_decision, run_canary
from tests.remediation.support import NOW, Clock
from tests.remediation.test_canary_first import Recorder
from tests.sensors.support import make_plan


class Members(Recorder):
    """Changes nothing (the cloud is not what is tested here) but says which machines the canary
    wave changed: the first target, against the others."""

    def members(self, plan, index):
        ids = [t.asset_id for t in plan.spec.targets.instances]
        return ids[:1], ids[1:]


class _Health(BaseHTTPRequestHandler):
    disable_nagle_algorithm = True

    def do_GET(self):  # noqa: N802
        status = 503 if self.path.endswith("-000") else 200  # the canary (first target) is down
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def health_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def policy_with_canary(tmp_path, url: str) -> RemediationPolicy:
    path = tmp_path / "remediation.yaml"
    path.write_text(f"""environments:
  staging:
    canary:
      min_points: 5
      step_seconds: 1
      probe: {{url_template: "{url}/healthz/{{target}}", samples: 6, interval_seconds: 0, timeout_seconds: 2}}
      metrics:
        - {{name: errors, source: http_probe, metric: error, critical: true, effect: shift, allowed_increase: 0.1}}
""")
    return RemediationPolicy.load(path)


VSPHERE_CPU = {"metrics": [{"name": "cpu", "source": "vsphere", "metric": "cpu.usage.average"}]}


def staging_plan(name: str, canary: dict | None = None):
    """A canary_only staging plan over 4 VMs, with ``canary`` as its spec's section if given."""
    plan = make_plan(name, instances=4, environment="staging", autonomy_mode="canary_only", risk_level="medium")
    if canary is None:
        return plan
    doc = plan.model_dump(mode="json", exclude={"content_hash"})
    doc["spec"]["canary"] = canary
    return type(plan).model_validate(doc).sealed()


def propose(tmp_path, plan):
    """(store, gate, task): ``plan`` proposed to a fresh SQLite task store as the findings sensor would."""
    url = f"sqlite:///{tmp_path / 'tasks.db'}"
    store = TaskStore(url, audit=AuditLog(url), clock=Clock(datetime(2026, 11, 27, 10, tzinfo=UTC)))
    gate = Gate.embedded()
    task = store.propose(plan, "sensor:drift_findings_sensor",
                         plan_decision(gate, plan, requested_by="sensor:drift_findings_sensor", fleet_size=1000))
    return store, gate, task


@pytest.mark.slow
def test_the_policy_canary_section_fails_a_canary_through_the_service(tmp_path, health_server):
    store, gate, task = propose(tmp_path, staging_plan("rp-canary"))
    driver = Members()
    analyst = EnvAnalyst(policy=policy_with_canary(tmp_path, health_server), env={}, now=lambda: NOW)
    outcome = run_canary(store, task.plan_hash, driver_for=lambda _p: driver, gate=gate, audit=store.audit,
                         actor="dagster:run-1", now=NOW, analyst=analyst)
    assert outcome.result.state == "rolled_back" and driver.rolled_back == [[0]]
    task = store.get(task.id)
    assert task.state == "rejected"
    assert task.reason.startswith("canary failed: canary analysis failed after wave 0 (canary): critical metric(s) "
                                  "failed: errors (high")
    (record,) = store.audit.records(subject=task.id, kind="canary_analysis")
    assert record.data["canary"] == ["i-rp-canary-000"] and record.data["metrics"][0]["n_baseline"] == 18


def test_no_canary_section_no_analysis(tmp_path):
    plan = staging_plan("rp-plain")
    analyst = EnvAnalyst(policy=RemediationPolicy.defaults(), env={})
    assert analyst(plan, 0, Members()) is None  # the shipped policy asks for none: the health gate alone decides


def test_a_source_that_cannot_be_built_is_named(tmp_path, health_server):
    policy = policy_with_canary(tmp_path, health_server)
    vs_plan = staging_plan("rp-vs", VSPHERE_CPU)
    analysis = EnvAnalyst(policy=policy, env={}, now=lambda: NOW)(vs_plan, 0, Members())
    assert analysis.verdict == "inconclusive" and "cpu: missing: no vsphere metric source is configured" in analysis.reason


@pytest.mark.slow
def test_an_inconclusive_canary_stays_pending_for_a_person_and_a_later_pause_waits_for_an_approver(tmp_path, health_server):
    from dashboards.components.cards import canary_note
    from qlrf.remediation.service import run_approved

    store, gate, task = propose(tmp_path, staging_plan("rp-unsure", VSPHERE_CPU))
    analyst = EnvAnalyst(policy=RemediationPolicy.defaults(), env={}, now=lambda: NOW)
    driver = Members()
    outcome = run_canary(store, task.plan_hash, driver_for=lambda _p: driver, gate=gate, audit=store.audit,
                         actor="dagster:run-1", now=NOW, analyst=analyst)
    assert outcome.result.state == "paused" and driver.rolled_back == []
    task = store.get(task.id)
    assert task.state == "pending_approval"  # not passed, not rejected: the approver decides
    assert task.decision["canary"]["passed"] is False and task.decision["canary"]["inconclusive"] is True
    assert task.decision["canary"]["analysis"]["verdict"] == "inconclusive"
    assert canary_note(task.decision).startswith("INCONCLUSIVE (canary analysis")

    store.approve(task.id, task.plan_hash, "alice@example.com", "looked at the canary myself")
    done = run_approved(store, task.plan_hash, driver_for=lambda _p: driver, gate=gate, audit=store.audit,
                        actor="dagster:run-2", now=NOW, analyst=analyst)
    task = store.get(task.id)
    assert done.result.state == "paused" and driver.waves == [0, 0]  # the canary wave again, nothing after it
    assert task.state == "paused" and task.reason.startswith("paused for a human before wave 1, nothing further "
                                                             "changed: canary analysis inconclusive after wave 0")
    again = run_approved(store, task.plan_hash, driver_for=lambda _p: driver, gate=gate, audit=store.audit,
                         actor="dagster:run-3", now=NOW, analyst=analyst)
    assert again.skipped and "qlrf plan continue|rollback" in again.note and driver.waves == [0, 0]

    from qlrf.remediation.approvals import PlanHashMismatch, SelfApprovalRefused

    with pytest.raises(SelfApprovalRefused):  # the requester never decides their own plan, paused or not
        store.decide_paused(task.id, task.plan_hash, task.requested_by.upper(), "mine", "continue")
    with pytest.raises(PlanHashMismatch):
        store.decide_paused(task.id, "0" * 64, "bob@example.com", "wrong hash", "continue")
    assert store.get(task.id).state == "paused"
    store.decide_paused(task.id, task.plan_hash, "bob@example.com", "metrics checked by hand", "continue")

    def passing(plan, index, drv):
        from qlrf.remediation.canary.analyst import CanaryAnalysis

        return CanaryAnalysis("pass", "fine")

    resumed = run_approved(store, task.plan_hash, driver_for=lambda _p: driver, gate=gate, audit=store.audit,
                           actor="dagster:run-4", now=NOW, analyst=passing)
    waves = len(task.plan().spec.waves)
    assert resumed.state == "succeeded", resumed.reason
    assert driver.waves == [0, 0, *range(1, waves)]  # continued at wave 1: the canary wave was not repeated
    decision = [r.data for r in store.audit.records(subject=task.id, kind="approval")][-1]
    assert decision["from"] == "paused" and decision["paused_choice"] == "continue" and decision["next_wave"] == 1
    assert store.audit.verify().ok
