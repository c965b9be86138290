"""One gate-request builder: the planner's preview and the executor's request for a wave are the same."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from qlrf.remediation.executor import HealthReport, execute_plan
from qlrf.remediation.gate import Gate, gate_request, percent
from qlrf.remediation.service import plan_decision
from tests.remediation.support import NOW, audit_log
from tests.sensors.support import make_plan


@dataclass
class RecordingGate:
    """The real embedded gate, keeping every request it was asked."""

    inner: Gate
    requests: list[dict] = field(default_factory=list)

    def decide(self, request: Any):
        self.requests.append(request)
        return self.inner.decide(request)


class HealthyDriver:
    def prepare(self, plan):
        return {}

    def run_wave(self, plan, index):
        return {}

    def health(self, plan, index):
        return HealthReport(True, 1, 1)

    def rollback(self, plan, waves_done):
        return {}


@pytest.mark.parametrize("fleet_size", [1000, 2])  # 2: the batch would be 100 x 2 / 2 = 100%, the canary 50%
def test_preview_and_execution_ask_the_gate_the_same_thing(tmp_path, fleet_size):
    plan = make_plan("rp-same", instances=3)
    gate = RecordingGate(Gate.embedded())
    preview = plan_decision(gate, plan, requested_by="sensor:drift", fleet_size=fleet_size)
    executed = RecordingGate(Gate.embedded())
    execute_plan(plan, driver=HealthyDriver(), gate=executed, audit=audit_log(f"sqlite:///{tmp_path}/a.db"),
                 requested_by="sensor:drift", fleet_size=fleet_size, now=NOW, log=lambda _: None, sleep=lambda _: None)
    asked = [r for r in executed.requests if r["action"] == "execute_wave"]
    assert len(asked) == (2 if fleet_size == 1000 else 1)  # on a fleet of 2 the gate blocks the 100% batch
    assert [w["input"] for w in preview["waves"]][: len(asked)] == asked
    assert all(0 <= r["drift_delta"] <= 100 for r in asked)


def test_percentages_clamp_to_0_100():
    assert (percent(3, 2), percent(1, 3), percent(-1, 5), percent(5, 0)) == (100.0, 33.3333, 0.0, 0.0)
    plan = make_plan("rp-clamp", instances=5)
    assert gate_request(plan, requested_by="x", fleet_size=1, wave=1)["drift_delta"] == 100.0


def test_a_plan_with_a_window_needs_a_time_or_an_explicit_answer():
    plan = make_plan("rp-window", environment="prod", autonomy_mode="canary_only",
                     window={"days": ["sat"], "start": "22:00", "end": "23:30"})
    with pytest.raises(ValueError, match="maintenance window"):
        gate_request(plan, requested_by="x", fleet_size=10)
    assert gate_request(plan, requested_by="x", fleet_size=10, now=NOW)["maintenance_window_open"] is True
    assert gate_request(plan, requested_by="x", fleet_size=10, window_is_open=False)["maintenance_window_open"] is False
