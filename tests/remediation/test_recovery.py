"""Recovery in-process through service.run_approved on moto: a run interrupted by a signal (here:
KeyboardInterrupt raised as the standalone instance's old copy is about to be terminated) leaves the
task running with its attempt interrupted; the next execution rolls the whole plan back from the
journal, audited, and a third execution has nothing to do."""

from __future__ import annotations

import boto3
import pytest

from qlrf.remediation import service
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.drivers.aws import AwsDriver, AwsDriverConfig
from qlrf.remediation.gate import Gate
from qlrf.remediation.journal import INTERRUPTED
from qlrf.remediation.policy import JournalPolicy
from qlrf.remediation.recovery import journal_for
from tests.remediation.support import NOW, PENDING, asg_images, asg_plan, seed_asg
from tests.servers.moto_server import start_moto_thread, use_loopback

pytestmark = pytest.mark.slow


class SignalBeforeTerminate(AwsDriver):
    """The real AWS driver; the operator's Ctrl-C arrives just before the first standalone termination."""

    fired = False

    def _send(self, service, operation, target, params, perform, dry_result=None):
        if operation == "TerminateInstances" and not SignalBeforeTerminate.fired:
            SignalBeforeTerminate.fired = True
            raise KeyboardInterrupt("Ctrl-C")
        return super()._send(service, operation, target, params, perform, dry_result)


def test_an_interrupted_run_is_rolled_back_by_the_next_execution(tmp_path, monkeypatch):
    monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
    with start_moto_thread(default_amis=False) as url:
        use_loopback(monkeypatch, url, str(tmp_path / "aws"))
        session = boto3.Session()
        estate = seed_asg(session, url, name="intr", standalone=1)
        url_db = f"sqlite:///{tmp_path / 'tasks.db'}"
        store = TaskStore(url_db, audit=AuditLog(url_db))
        task = store.propose(asg_plan(estate), "sensor:drift_findings_sensor",
                             {**PENDING, "input": {**PENDING["input"], "fleet_size": 200}})
        store.approve(task.id, task.plan_hash, "alice@example.com", "CAB-12")
        config = AwsDriverConfig(endpoint_url=url, poll_interval=0.05, replace_timeout=20, max_attempts=2)
        gate = Gate.embedded()
        kwargs = {"gate": gate, "audit": store.audit, "actor": "cli:bob", "now": NOW,
                  "crash_policy": JournalPolicy(on_crash="rollback")}

        with pytest.raises(KeyboardInterrupt):
            service.run_approved(store, task.plan_hash, driver_for=lambda _p: SignalBeforeTerminate(config), **kwargs)
        assert store.get(task.id).state == "running"  # left for the next execution, not marked failed
        journal = journal_for(store)
        assert journal.unfinished(task.id).status == INTERRUPTED
        _, mid = asg_images(session, url, estate)
        assert list(mid.values()).count(estate.golden_ami) == 8  # canary 2 + wave 1's 6

        outcome = service.run_approved(store, task.plan_hash, driver_for=lambda _p: AwsDriver(config), **kwargs)
        assert outcome.state == "rolled_back" and "the run was interrupted" in outcome.reason
        version, images = asg_images(session, url, estate)
        assert version == "1" and set(images.values()) == {estate.old_ami} and len(images) == 12
        ec2 = session.client("ec2", region_name=estate.region, endpoint_url=url)
        old = ec2.describe_instances(InstanceIds=estate.standalone)["Reservations"][0]["Instances"][0]
        assert old["State"]["Name"] == "running"  # never terminated: only its replacement was removed
        replacements = ec2.describe_instances(Filters=[{"Name": "tag:qlrf:replaces", "Values": estate.standalone}])
        states = {i["State"]["Name"] for r in replacements["Reservations"] for i in r["Instances"]}
        assert states <= {"terminated", "shutting-down"}
        recovery = store.audit.records(subject=task.id, kind="execution_recovery")[-1].data
        assert recovery["decision"] == "rollback" and recovery["waves_started"] == [0, 1]
        assert store.audit.verify().ok

        again = service.run_approved(store, task.plan_hash, driver_for=lambda _p: AwsDriver(config), **kwargs)
        assert again.skipped and "already rolled_back" in again.note


class RecordingAnalyst:
    """A canary analyst that passes every wave and remembers which waves it judged."""

    def __init__(self):
        self.waves: list[int] = []

    def __call__(self, plan, index, driver):
        from qlrf.remediation.canary.analyst import CanaryAnalysis

        self.waves.append(index)
        return CanaryAnalysis("pass", f"wave {index} healthy")


def test_a_resumed_run_applies_the_canary_analysis_to_every_wave_it_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
    SignalBeforeTerminate.fired = False
    with start_moto_thread(default_amis=False) as url:
        use_loopback(monkeypatch, url, str(tmp_path / "aws"))
        session = boto3.Session()
        estate = seed_asg(session, url, name="resume", standalone=1)
        url_db = f"sqlite:///{tmp_path / 'tasks.db'}"
        store = TaskStore(url_db, audit=AuditLog(url_db))
        task = store.propose(asg_plan(estate), "sensor:drift_findings_sensor",
                             {**PENDING, "input": {**PENDING["input"], "fleet_size": 200}})
        store.approve(task.id, task.plan_hash, "alice@example.com", "CAB-12")
        config = AwsDriverConfig(endpoint_url=url, poll_interval=0.05, replace_timeout=20, max_attempts=2)
        kwargs = {"gate": Gate.embedded(), "audit": store.audit, "actor": "cli:bob", "now": NOW,
                  "crash_policy": JournalPolicy(on_crash="resume")}
        first = RecordingAnalyst()
        with pytest.raises(KeyboardInterrupt):
            service.run_approved(store, task.plan_hash, driver_for=lambda _p: SignalBeforeTerminate(config),
                                 analyst=first, **kwargs)

        resumed = RecordingAnalyst()
        outcome = service.run_approved(store, task.plan_hash, driver_for=lambda _p: AwsDriver(config),
                                       analyst=resumed, **kwargs)
        recovery = store.audit.records(subject=task.id, kind="execution_recovery")[-1].data
        assert recovery["decision"] == "resume", recovery
        start = store.audit.records(subject=task.id, kind="execution_resumed")[-1].data["first_wave"]
        plan = task.plan()
        assert outcome.state == "succeeded", outcome.reason
        assert resumed.waves == list(range(start, len(plan.spec.waves))), (start, resumed.waves)
        judged = [r.data["wave"] for r in store.audit.records(subject=task.id, kind="canary_analysis")]
        assert judged[-len(resumed.waves):] == resumed.waves
        assert store.audit.verify().ok


def test_an_approver_rolls_a_paused_plan_back_from_the_journal(tmp_path, monkeypatch):
    """A canary analysis that cannot judge pauses the plan after its canary wave; the process is
    gone, so the rollback an approver chooses restores the driver from the journal's checkpoint."""
    from qlrf.remediation.canary.analyst import CanaryAnalysis

    monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
    with start_moto_thread(default_amis=False) as url:
        use_loopback(monkeypatch, url, str(tmp_path / "aws"))
        session = boto3.Session()
        estate = seed_asg(session, url, name="pause", standalone=1)
        url_db = f"sqlite:///{tmp_path / 'tasks.db'}"
        store = TaskStore(url_db, audit=AuditLog(url_db))
        task = store.propose(asg_plan(estate), "sensor:drift_findings_sensor",
                             {**PENDING, "input": {**PENDING["input"], "fleet_size": 200}})
        store.approve(task.id, task.plan_hash, "alice@example.com", "CAB-12")
        config = AwsDriverConfig(endpoint_url=url, poll_interval=0.05, replace_timeout=20, max_attempts=2)
        kwargs = {"gate": Gate.embedded(), "audit": store.audit, "now": NOW}
        unsure = lambda plan, index, driver: CanaryAnalysis("inconclusive", "cpu: missing: no datapoints")  # noqa: E731
        paused = service.run_approved(store, task.plan_hash, driver_for=lambda _p: AwsDriver(config), actor="dagster:run-1",
                                      analyst=unsure, **kwargs)
        assert paused.state == "paused" and store.get(task.id).state == "paused"
        _, mid = asg_images(session, url, estate)
        assert list(mid.values()).count(estate.golden_ami) == 2  # the canary wave only

        store.decide_paused(task.id, task.plan_hash, "carol@example.com", "no metrics: undo it", "rollback")
        done = service.run_approved(store, task.plan_hash, driver_for=lambda _p: AwsDriver(config), actor="dagster:run-2",
                                    analyst=unsure, **kwargs)
        assert done.state == "rolled_back", done.reason
        version, images = asg_images(session, url, estate)
        assert version == "1" and set(images.values()) == {estate.old_ami}
        assert store.get(task.id).state == "rolled_back"
        rollback = store.audit.records(subject=task.id, kind="rollback")[-1].data
        assert rollback["performed"] and rollback["from_journal"] and rollback["waves"] == [0]
        assert store.audit.verify().ok
