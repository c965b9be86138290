"""Shared pieces of the sensor, remediation-job and approvals-page tests: plans, stores, fakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.calls import CallRecorder, CloudCall
from qlrf.remediation.executor import HealthReport
from qlrf.remediation.plans import PatchPlan
from resources.alerts import AlertsResource
from resources.remediation import RemediationResource

DAY = "2026-11-20"  # the day drift_day materialises (tests/sensors/conftest.py)
PENDING = {"allow": False, "requires_approval": True, "deny": [], "approval_reasons": ["risk level high always needs approval"],
           "input": {"action": "plan", "fleet_size": 100}}
AUTO = {"allow": True, "requires_approval": False, "deny": [], "approval_reasons": [], "input": {"action": "plan", "fleet_size": 100}}


def make_plan(
    name: str = "rp-test",
    *,
    instances: int = 3,
    environment: str = "dev",
    autonomy_mode: str = "full_auto",
    risk_level: str = "low",
    site: str = "lon1",
    window: dict | None = None,
    created_at: str = "2026-11-27T10:00:00Z",
) -> PatchPlan:
    """A sealed plan over `instances` standalone AWS VMs: a canary of one, then the rest."""
    ids = [f"i-{name}-{i:03d}" for i in range(instances)]
    waves = [{"name": "canary", "canary": True, "instances": ids[:1]}]
    if instances > 1:
        waves.append({"name": "batch-1", "instances": ids[1:]})
    spec: dict[str, Any] = {
        "targets": {"instances": [
            {"asset_id": i, "platform": "aws", "account": "111111111111", "region": "eu-west-1", "name": i, "from_image": "ami-old",
             "from_family": "ubuntu-22.04"}
            for i in ids
        ]},
        "from_images": [{"image_ref": "ami-old", "family": "ubuntu-22.04", "version": "2026.10.1"}],
        "to_image": {"image_ref": "ami-new", "family": "ubuntu-22.04", "version": "2026.11.2"},
        "waves": waves,
        "rollback": {"strategy": "previous_image", "image_ref": "ami-old"},
        "health_gate": {"timeout_seconds": 1},  # an unhealthy wave is judged after 1 s, not 10 min
    }
    if window:
        spec["maintenance_window"] = window
    doc = {
        "metadata": {
            "id": name, "created_at": created_at, "created_by": "sensor:drift_findings_sensor",
            "reason": f"{site} {environment} aws: drift above threshold", "environment": environment, "platform": "aws",
            "site": site, "risk_level": risk_level, "autonomy_mode": autonomy_mode,
        },
        "spec": spec,
    }
    return PatchPlan.model_validate(doc).sealed()


def store_at(url: str) -> TaskStore:
    return TaskStore(url, audit=AuditLog(url))


@dataclass
class CaptureChannel:
    """An alert channel that keeps what it was sent (the loopback channels are tested in tests/alerts/test_alerts.py)."""

    name: str = "capture"
    sent: list = field(default_factory=list)

    def send(self, alert) -> None:
        self.sent.append(alert)

    def describe(self) -> str:
        return "capture"


CAPTURE = CaptureChannel()


class CapturingAlerts(AlertsResource):
    """AlertsResource whose only channel is the module's CAPTURE."""

    def channels(self):
        return [CAPTURE]


@dataclass
class FakeDriver:
    """A driver whose machines come up healthy, or not (`unhealthy_wave`); it describes one cloud
    call per wave to its recorder (sent only outside a dry run, where it lands in `calls`)."""

    unhealthy_wave: int | None = None
    calls: list = field(default_factory=list)
    recorder: CallRecorder = field(default_factory=CallRecorder)

    def prepare(self, plan):
        self.calls.append(("prepare",))
        return {"prepared": True}

    def run_wave(self, plan, index):
        wave = plan.spec.waves[index]
        self.recorder.send(CloudCall("aws", "ec2", "ReplaceInstances", wave.name, {"instances": list(wave.instances)}),
                           lambda: self.calls.append(("run_wave", index)))
        return {"replaced": plan.wave_targets(index)}

    def health(self, plan, index):
        total = sum(plan.wave_targets(i) for i in range(index + 1))
        healthy = total - 1 if index == self.unhealthy_wave else total
        return HealthReport(healthy == total, total, healthy, {"unhealthy": ["i-bad"]} if healthy != total else {})

    def rollback(self, plan, waves_done):
        self.calls.append(("rollback", tuple(waves_done)))
        return {"restored": list(waves_done)}


DRIVER = FakeDriver()


class FakeDriverRemediation(RemediationResource):
    """RemediationResource with the module's fake driver for every platform."""

    def driver(self, platform: str, *, dry_run: bool = False):
        return FakeDriver(recorder=CallRecorder(dry_run=True)) if dry_run else DRIVER


def aware(text: str) -> datetime:
    return datetime.fromisoformat(text)
