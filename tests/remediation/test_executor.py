"""execute_plan with an in-memory driver, the real Rego gate (policy/*.rego) and the real audit log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from qlrf.remediation.drivers import group_quota, groups_through, passes
from qlrf.remediation.executor import HealthReport, chunks, execute_plan
from qlrf.remediation.gate import Gate
from tests.remediation.support import NOW, audit_log, kinds, plan_for, three_waves

GROUP = {"kind": "asg", "platform": "aws", "account": "1", "region": "eu-west-1", "name": "web", "size": 12}
WINDOW = {"days": ["sat", "sun"], "start": "22:00", "end": "04:00"}


@dataclass
class MemoryDriver:
    """A 12-instance group in a dict: replaces in chunks of max_unavailable, can fail on demand."""

    size: int = 12
    images: dict[str, str] = field(default_factory=dict)
    calls: list[tuple] = field(default_factory=list)
    replaced_in: dict[int, list[list[str]]] = field(default_factory=dict)
    bad: set[str] = field(default_factory=set)  # instances that fail the health gate
    unhealthy_wave: int | None = None
    healthy_after_looks: int = 0  # the first N health looks of a wave report unhealthy
    raise_in_wave: int | None = None
    looks: int = 0

    def __post_init__(self) -> None:
        self.images = {f"i-{n:02d}": "old" for n in range(self.size)}

    def prepare(self, plan):
        self.calls.append(("prepare",))
        return {"instances": len(self.images)}

    def run_wave(self, plan, index):
        self.calls.append(("run_wave", index))
        if index == self.raise_in_wave:
            raise RuntimeError("API said no")
        old = sorted(i for i, img in self.images.items() if img == "old")
        quota = group_quota(plan, index, "web")
        pick = old if quota is None else old[:quota]
        batches = chunks(pick, plan.spec.max_unavailable)
        for batch in batches:
            for iid in batch:
                self.images[iid] = "golden"
        self.replaced_in[index] = batches
        if index == self.unhealthy_wave:
            self.bad.add(pick[0])
        self.looks = 0
        return {"replaced": pick}

    def health(self, plan, index):
        self.calls.append(("health", index))
        self.looks += 1
        new = [i for i, img in self.images.items() if img == "golden"]
        good = [i for i in new if i not in self.bad and self.looks > self.healthy_after_looks]
        ok = passes(plan, len(good), len(new), group=True) and bool(groups_through(plan, index))
        return HealthReport(ok, len(new), len(good), {"unhealthy": sorted(set(new) - set(good))} if not ok else {})

    def rollback(self, plan, waves_done):
        self.calls.append(("rollback", tuple(waves_done)))
        for iid in self.images:
            self.images[iid] = "old"
        self.bad.clear()
        return {"restored": len(self.images)}


class Clock:
    """A fake monotonic clock that only moves when the executor sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def gate():
    return Gate.embedded()


@pytest.fixture()
def audit(tmp_path):
    return audit_log(f"sqlite:///{tmp_path / 'audit.db'}")


def run(plan, driver, gate, audit, clock=None, **kw):
    clock = clock or Clock()
    kw.setdefault("requested_by", "sensor:drift_findings_sensor")
    kw.setdefault("fleet_size", 200)
    kw.setdefault("now", NOW)
    return execute_plan(plan, driver=driver, gate=gate, audit=audit, sleep=clock.sleep, clock=clock,
                        log=lambda _msg: None, poll_interval=5, **kw)


def plan(**over):
    kwargs: dict[str, Any] = {"groups": [GROUP], "waves": three_waves("web"), "to_image": "ami-golden",
                              "max_unavailable": 2, "timeout_seconds": 60}
    kwargs.update(over)
    return plan_for(**kwargs)


def test_success_runs_every_wave_in_chunks_and_audits_each_step(gate, audit):
    driver = MemoryDriver()
    result = run(plan(), driver, gate, audit)
    assert result.state == "succeeded" and result.reason == "all 3 waves healthy"
    assert [w.state for w in result.waves] == ["healthy"] * 3
    assert set(driver.images.values()) == {"golden"}
    # canary ceil(12 x 10%) = 2, then ceil(12 x 45%) = 6, the last wave takes the 4 left; chunks of 2
    assert [[len(b) for b in driver.replaced_in[i]] for i in range(3)] == [[2], [2, 2, 2], [2, 2]]
    assert driver.calls[0] == ("prepare",) and ("rollback",) not in [c[:1] for c in driver.calls]
    assert [w.drift_delta for w in result.waves] == [1.0, 3.0, 3.0]  # targets 2, 6, 6 of 200
    assert kinds(audit) == ["policy_decision", "wave_start", "health_gate", "wave_end"] * 3 + ["execution_end"]
    decision = audit.records(kind="policy_decision")[0].data
    assert decision["input"]["action"] == "execute_wave" and decision["input"]["canary"] is True
    assert decision["input"]["plan_hash"] == plan().content_hash and decision["decision"]["allow"] is True
    assert all(r.subject == "plan:plan-aws-test" for r in audit.records())
    assert audit.verify().ok


def test_prod_full_auto_is_blocked_before_any_change(gate, audit):
    driver = MemoryDriver()
    result = run(plan(environment="prod", window=WINDOW), driver, gate, audit)
    assert result.state == "blocked" and driver.calls == []
    assert "production is never full_auto" in result.reason
    assert kinds(audit) == ["policy_decision", "execution_end"]
    assert audit.records(kind="execution_end")[0].data["state"] == "blocked"


def test_canary_only_runs_the_canary_then_waits_for_approval(gate, audit):
    driver = MemoryDriver()
    p = plan(autonomy_mode="canary_only")
    result = run(p, driver, gate, audit)
    assert result.state == "blocked" and [w.state for w in result.waves] == ["healthy", "blocked"]
    assert "pending approval" in result.reason and "canary_only: wave 1 is not the canary wave" in result.reason
    assert [c for c in driver.calls if c[0] == "run_wave"] == [("run_wave", 0)]
    assert sorted(driver.images.values()).count("golden") == 2  # the canary stays; nothing is rolled back

    approved = MemoryDriver()
    result = run(p, approved, gate, audit, approval={"plan_hash": p.content_hash, "approver": "alice"})
    assert result.state == "succeeded"
    decisions = [r.data for r in audit.records(kind="policy_decision")][-3:]
    assert all(d["decision"]["approved"] for d in decisions)


def test_self_approval_and_other_plan_hash_are_refused(gate, audit):
    p = plan(risk_level="high")
    for approval in ({"plan_hash": p.content_hash, "approver": "sensor:drift_findings_sensor"},
                     {"plan_hash": "sha256:" + "0" * 64, "approver": "alice"}):
        driver = MemoryDriver()
        result = run(p, driver, gate, audit, approval=approval)
        assert result.state == "blocked" and driver.calls == []


def test_prod_needs_an_open_maintenance_window(gate, audit):
    p = plan(environment="prod", autonomy_mode="canary_only", window=WINDOW)
    friday = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    closed = run(p, MemoryDriver(), gate, audit, now=friday, fleet_size=1000)
    assert closed.state == "blocked" and "maintenance window" in closed.reason
    opened = run(p, MemoryDriver(), gate, audit, now=NOW, fleet_size=1000)  # Saturday 23:00: canary runs
    assert [w.state for w in opened.waves] == ["healthy", "blocked"]
    assert opened.waves[0].decision["input"]["maintenance_window_open"] is True


def test_a_wave_above_the_drift_delta_limit_is_denied(gate, audit):
    result = run(plan(), MemoryDriver(), gate, audit, fleet_size=12)  # canary 2 of 12 = 16.7 % > dev canary 10 %
    assert result.state == "blocked" and "above the canary limit of 10%" in result.reason


def test_unhealthy_canary_rolls_back_and_stops(gate, audit):
    driver = MemoryDriver(unhealthy_wave=0)
    clock = Clock()
    result = run(plan(timeout_seconds=30), driver, gate, audit, clock)
    assert result.state == "rolled_back"
    assert "health gate failed after wave 0 (canary): 1/2 healthy within 30s" in result.reason
    assert "i-00" in result.reason and [w.state for w in result.waves] == ["unhealthy"]
    assert ("rollback", (0,)) in driver.calls and ("run_wave", 1) not in driver.calls
    assert set(driver.images.values()) == {"old"}
    assert sum(clock.sleeps) == pytest.approx(30) and clock.now == pytest.approx(30)  # polled until the deadline
    assert kinds(audit) == ["policy_decision", "wave_start", "health_gate", "wave_end", "policy_decision",
                            "rollback", "execution_end"]
    gate_rec = audit.records(kind="health_gate")[0].data
    assert gate_rec["healthy"] is False and gate_rec["polls"] == 7 and gate_rec["details"]["unhealthy"] == ["i-00"]
    rollback_decision = audit.records(kind="policy_decision")[1].data
    assert rollback_decision["input"]["action"] == "rollback" and rollback_decision["decision"]["allow"] is True
    assert audit.records(kind="rollback")[0].data["performed"] is True


def test_health_is_polled_until_healthy(gate, audit):
    driver = MemoryDriver(healthy_after_looks=2)
    clock = Clock()
    result = run(plan(), driver, gate, audit, clock)
    assert result.state == "succeeded"
    assert [c for c in driver.calls if c[0] == "health"].count(("health", 0)) == 3
    assert clock.sleeps[:2] == [5, 5]


def test_a_wave_that_raises_is_rolled_back(gate, audit):
    driver = MemoryDriver(raise_in_wave=1)
    result = run(plan(), driver, gate, audit)
    assert result.state == "rolled_back" and "wave 1 (batch-1) failed: RuntimeError: API said no" in result.reason
    assert ("rollback", (0, 1)) in driver.calls
    assert audit.records(kind="wave_end")[-1].data["state"] == "error"


def test_a_rollback_the_gate_denies_fails_the_plan(audit):
    real = Gate.embedded()

    class NoRollback:
        def decide(self, request):
            decision = real.decide(request)
            if request["action"] == "rollback":
                return decision.__class__.deny("rollbacks frozen", request, "test")
            return decision

    driver = MemoryDriver(unhealthy_wave=0)
    result = run(plan(timeout_seconds=1), driver, NoRollback(), audit)
    assert result.state == "failed" and "rollback not allowed (denied: rollbacks frozen)" in result.reason
    assert not any(c[0] == "rollback" for c in driver.calls)
    assert audit.records(kind="rollback")[0].data["performed"] is False


def test_prepare_failure_fails_without_changes(gate, audit):
    class Broken(MemoryDriver):
        def prepare(self, plan):
            raise ValueError("no such group")

    driver = Broken()
    result = run(plan(), driver, gate, audit)
    assert result.state == "failed" and "preparing the plan failed: ValueError: no such group" in result.reason
    assert not any(c[0] == "run_wave" for c in driver.calls)


def test_tampered_plan_is_blocked(gate, audit):
    p = plan()
    forged = p.model_copy(update={"content_hash": "sha256:" + "f" * 64})
    result = run(forged, MemoryDriver(), gate, audit)
    assert result.state == "blocked" and "content_hash does not match" in result.reason


def test_subject_and_fleet_size_checks(gate, audit):
    result = run(plan(), MemoryDriver(), gate, audit, subject="task-123")
    assert {r.subject for r in audit.records()} == {"task-123"} and result.state == "succeeded"
    with pytest.raises(ValueError, match="fleet_size"):
        run(plan(), MemoryDriver(), gate, audit, fleet_size=0)
