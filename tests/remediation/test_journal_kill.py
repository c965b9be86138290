"""Kill the executor mid-wave (SIGKILL, a child process running `qlrf plan execute`) on moto, then run
the task again in a fresh process: the group ends fully on the golden image (journal.on_crash: resume)
or fully back on the old one (rollback, the default), no orphan instance, the audit chain intact."""

from __future__ import annotations

import boto3
import pytest

from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.journal import ExecutionJournal
from tests.remediation.crash import cli_env, execute_and_kill, qlrf
from tests.remediation.support import PENDING, asg_images, asg_plan, seed_asg
from tests.remediation.test_cli_loop import home  # noqa: F401 - the fixture: a fresh QLRF_HOME shared with the CLI
from tests.servers.moto_server import start_moto_thread, use_loopback

pytestmark = pytest.mark.slow


def live_instances(session, url, region) -> set[str]:
    ec2 = session.client("ec2", region_name=region, endpoint_url=url)
    states = ["pending", "running", "stopping", "stopped"]
    pages = ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "instance-state-name", "Values": states}])
    return {i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]}


def approved_task(estate):
    store = TaskStore(audit=AuditLog())
    plan = asg_plan(estate)  # 12 members: canary 2, then 6 and 4, two at a time
    task = store.propose(plan, "sensor:drift_findings_sensor", {**PENDING, "input": {**PENDING["input"], "fleet_size": 200}})
    store.approve(task.id, task.plan_hash, "alice@example.com", "CAB-12")
    return store, task


@pytest.mark.parametrize("on_crash", ["rollback", "resume"])
def test_a_killed_execution_ends_fully_patched_or_fully_back(home, tmp_path, monkeypatch, on_crash):  # noqa: F811
    with start_moto_thread(default_amis=False) as url:
        use_loopback(monkeypatch, url, str(tmp_path / "aws"))
        session = boto3.Session()
        estate = seed_asg(session, url, name=f"kill-{on_crash}", size=12)
        store, task = approved_task(estate)
        policy = tmp_path / "remediation.yaml"
        policy.write_text(f"journal:\n  on_crash: {on_crash}\n")
        env = cli_env(QLRF_REMEDIATION_POLL_SECONDS="0.05", QLRF_REMEDIATION_POLICY=str(policy))

        killed = execute_and_kill(task.id, env, wave=1)
        assert killed.unfinished and killed.wave_steps >= 1, killed.output  # killed inside wave 1
        assert store.get(task.id).state == "running"
        _, mid = asg_images(session, url, estate)
        assert estate.golden_ami in mid.values()  # the canary and part of wave 1 were replaced

        again = qlrf("plan", "execute", task.id, env=env)
        assert again.returncode in (0, 1), again.stderr
        version, images = asg_images(session, url, estate)
        final = store.get(task.id)
        if on_crash == "resume":
            assert final.state == "succeeded", again.stdout + again.stderr
            assert set(images.values()) == {estate.golden_ami} and version not in ("1", "$Latest")
        else:
            assert final.state == "rolled_back", again.stdout + again.stderr
            assert set(images.values()) == {estate.old_ami} and version == "1"
        assert len(images) == 12 and live_instances(session, url, estate.region) == set(images)  # no orphans

        kinds = [r.kind for r in store.audit.records(subject=task.id)]
        assert "execution_recovery" in kinds
        assert ("execution_resumed" if on_crash == "resume" else "rollback") in kinds
        rollback = [r.data for r in store.audit.records(subject=task.id, kind="rollback")]
        assert on_crash == "resume" or (rollback[-1]["from_journal"] and rollback[-1]["performed"])
        verify = store.audit.verify()  # what `qlrf audit verify` runs (the bench runs the command itself)
        assert verify.ok, verify

        attempts = [e for e in ExecutionJournal().entries(task.id) if e.step == "attempt"]
        assert [a.status for a in attempts] == ["failed", "done"]  # the killed one taken over, the recovery done
        if on_crash == "resume":  # the command once (a CLI start-up costs seconds on a busy machine)
            shown = qlrf("plan", "journal", task.id, env=env)
            assert shown.returncode == 0 and "recover:resume" in shown.stdout
            assert "autoscaling.TerminateInstanceInAutoScalingGroup" in shown.stdout
