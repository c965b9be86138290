"""The remediation loop from the command line (issue 12 items 8 and 9): propose, queue, show --plan,
bulk decisions and execute, through the same service code as the Dagster jobs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import boto3
import pytest

from qlrf.cli import main
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.planner import MIXED_GROUP
from tests.remediation.support import PENDING, asg_images, asg_plan, seed_asg
from tests.sensors.support import make_plan
from tests.servers.moto_server import start_moto_thread, use_loopback
from tests.tenancy.support import grant, local_operator


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A fresh QLRF_HOME (task store, audit log and its anchor) shared by this process and the CLI children."""
    home = tmp_path / "home"
    monkeypatch.setenv("QLRF_HOME", str(home))
    for var in ("QLRF_POSTGRES_URL", "QLRF_OPA_URL", "QLRF_AUDIT_DIR", "QLRF_REMEDIATION_POLICY"):
        monkeypatch.delenv(var, raising=False)
    # The CLI's trusted local operator proposes; alice approves (issue 14: roles are enforced).
    local_operator(monkeypatch, "operator", "operator@*")
    grant("alice", "approver@*")
    return home


def qlrf(*args: str, **env: str) -> subprocess.CompletedProcess:
    child = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    child.update(env)
    return subprocess.run([sys.executable, "-m", "qlrf.cli", *args], capture_output=True, text=True, env=child, timeout=180)


def store() -> TaskStore:
    return TaskStore(audit=AuditLog())


def pending_with_fleet(fleet: int) -> dict:
    return {**PENDING, "input": {**PENDING["input"], "fleet_size": fleet}}


@pytest.mark.slow
def test_show_plan_prints_the_exact_yaml_that_validates(home, tmp_path):
    task = store().propose(make_plan("rp-show", environment="prod", risk_level="high"), "sensor:drift", PENDING)
    shown = qlrf("approvals", "show", task.id, "--plan")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == task.plan_yaml
    saved = tmp_path / "approved.yaml"
    saved.write_text(shown.stdout)
    valid = qlrf("plan", "validate", str(saved))
    assert valid.returncode == 0 and f"({task.plan_id}, {task.plan_hash})" in valid.stdout
    saved.write_text(shown.stdout.replace("name: i-rp-show-001", "name: i-rp-show-999"))
    tampered = qlrf("plan", "validate", str(saved))
    assert tampered.returncode == 2 and "content_hash does not match" in tampered.stderr


def test_bulk_approves_only_low_risk_and_the_queue_ranks(home, capsys):
    s = store()
    low = s.propose(make_plan("rp-low", site="fra1"), "sensor:drift", PENDING)
    high = s.propose(make_plan("rp-high", environment="prod", risk_level="high", site="lon1"), "sensor:drift", PENDING)
    assert main(["approvals", "queue"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out[1:-1]] == [high.id, low.id] and out[-1] == "queue: 2 pending task(s)"
    assert main(["approvals", "approve", "--bulk", "--risk", "high", "--as", "alice", "--reason", "ok"]) == 2
    assert "bulk decisions are for low-risk plans only, got --risk high" in capsys.readouterr().err
    assert main(["approvals", "approve", "--bulk", "--as", "alice", "--reason", "ok"]) == 2
    assert "--bulk needs --risk low" in capsys.readouterr().err
    assert main(["approvals", "approve", "--as", "alice", "--reason", "ok"]) == 2
    assert main(["approvals", "approve", "--bulk", "--risk", "low", "--as", "alice", "--reason", "routine"]) == 0
    assert f"approved: {low.id}" in capsys.readouterr().out
    assert (s.get(low.id).state, s.get(high.id).state) == ("approved", "pending_approval")


@pytest.mark.slow
def test_propose_plans_a_day_with_one_open_plan_per_scope(home, materialized_day, monkeypatch, capsys):
    warehouse, day = materialized_day
    monkeypatch.setenv("QLRF_WAREHOUSE", str(warehouse))
    assert main(["plan", "propose", "--date", day, "--site", "sfo1"]) == 0
    out = capsys.readouterr().out
    pending = store().list(states="pending_approval")
    scopes = Counter((t.site, t.environment, t.platform) for t in pending)
    assert pending and max(scopes.values()) == 1 and {t.site for t in pending} == {"sfo1"}
    assert f"queue: {len(pending)} pending task(s)" in out
    assert f"not planned: {MIXED_GROUP} " in out  # the sample estate's mixed groups, named for a person
    for task in pending:  # never change what a VM is
        plan = task.plan()
        assert set(plan.spec.targets.from_families()) == {plan.spec.to_image.family}
    again = main(["plan", "propose", "--date", day, "--site", "sfo1"])
    assert again == 0 and [t.id for t in store().list(states="pending_approval")] == [t.id for t in pending]  # idempotent


@pytest.mark.slow
def test_execute_an_approved_task_from_the_cli_on_moto(home, tmp_path, monkeypatch):
    with start_moto_thread(default_amis=False) as url:
        use_loopback(monkeypatch, url, str(tmp_path / "aws"))
        session = boto3.Session()
        estate = seed_asg(session, url, name="cli-exec", size=4)
        plan = asg_plan(estate)
        s = store()
        task = s.propose(plan, "sensor:drift_findings_sensor", pending_with_fleet(200))
        dry = qlrf("plan", "execute", task.id, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "nothing was changed" in dry.stdout and asg_images(session, url, estate)[0] == "1"
        refused = qlrf("plan", "execute", task.id)
        assert refused.returncode == 2 and f"{task.id} is pending_approval, not approved" in refused.stderr
        s.approve(task.id, task.plan_hash, "alice@example.com", "CAB-7")
        done = qlrf("plan", "execute", task.id, QLRF_REMEDIATION_POLL_SECONDS="0.05")
        assert done.returncode == 0, done.stderr + done.stdout
        assert f"{task.id} ({plan.metadata.id}): succeeded: all 3 waves healthy" in done.stdout
        assert "wave 0 (canary) starts" in done.stdout and "wave 2 healthy" in done.stdout  # progress lines
        version, images = asg_images(session, url, estate)
        assert version != "1" and set(images.values()) == {estate.golden_ami}
        assert s.get(task.id).state == "succeeded"
        twice = qlrf("plan", "execute", task.id)
        assert twice.returncode == 0 and "already succeeded" in twice.stdout


@pytest.mark.slow
def test_propose_keeps_the_queue_within_its_limit_and_plans_deferred_scopes_once_there_is_room(
        home, materialized_day, monkeypatch, tmp_path, capsys):
    warehouse, day = materialized_day
    monkeypatch.setenv("QLRF_WAREHOUSE", str(warehouse))
    policy = tmp_path / "remediation.yaml"
    policy.write_text("queue:\n  max_pending: 2\n")
    assert main(["plan", "propose", "--date", day, "--site", "sfo1", "--policy", str(policy)]) == 0
    out = capsys.readouterr().out
    first = store().list(states="pending_approval")
    assert len(first) == 2 and "scope(s) deferred (the queue is full)" in out
    (record,) = store().audit.records(subject=f"planning:{day}", kind="queue_deferred")  # one record for the run
    deferred = record.data["deferred"]
    assert deferred and record.data["max_pending"] == 2 and all(d["rank"] > 2 for d in deferred)
    assert f"deferred (queue full, queue limit 2): {deferred[0]['scope']} {deferred[0]['plan_id']} rank" in out
    best = min(deferred, key=lambda d: d["rank"])
    pending, rounds = first, 0
    while best["plan_id"] not in {t.plan_id for t in pending}:  # the approval board works through the queue
        assert rounds < 8, f"{best['scope']} was never planned: {[t.plan_id for t in pending]}"
        for task in pending:
            assert store().reject(task.id, task.plan_hash, "bob@example.com", "not this week").state == "rejected"
        assert main(["plan", "propose", "--date", day, "--site", "sfo1", "--policy", str(policy)]) == 0
        pending, rounds = store().list(states="pending_approval"), rounds + 1
        assert 0 < len(pending) <= 2  # the queue refills with the most urgent work, never past its limit
    assert rounds >= 1  # it waited for room, then became a task
