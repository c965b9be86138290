"""AWS drills end to end through boto3 against moto: restore into the DR region, measure, clean up;
and the faults (no restore point, no quota in the DR region, a step timeout, a VM that never becomes
healthy, a killed run), each recorded with the step and reason, cleaned up, nothing else touched."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import boto3
import pytest

from qlrf.dr.authorise import DR_DECISION_PATH
from qlrf.dr.drivers.aws import AwsDrillConfig, AwsDrillDriver
from qlrf.dr.records import drill_history
from qlrf.dr.runner import DrillRunner
from qlrf.dr.service import DrillRefused, dry_run, run_drill
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.gate import Gate
from qlrf.warehouse import Warehouse
from tests.dr.support import (
    DR,
    aws_inventory,
    drill_plan,
    seed_aws,
    source_state,
    tagged_in,
    write_inventory,
)
from tests.remediation.support import sqlite_task_store
from tests.servers.moto_server import FaultProxy, ec2_error, loopback_env, start_moto_thread, use_loopback

pytestmark = pytest.mark.slow
NONE_LEFT = {"instances": [], "images": [], "snapshots": []}


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    with start_moto_thread(default_amis=False) as url:
        use_loopback(mp, url, str(tmp_path_factory.mktemp("aws")))
        yield url
    mp.undo()


@pytest.fixture(scope="module")
def gate():
    return Gate.embedded(decision_path=DR_DECISION_PATH)


@pytest.fixture
def world(moto, tmp_path):
    """A fresh estate of 3 VMs (the last without any snapshot when asked) and its inventory."""
    class World:
        session = boto3.Session()
        wh = Warehouse(str(tmp_path / "wh"))
        audit = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}")

        def seed(self, n=3, without_snapshot=0, older=False):
            self.estate = seed_aws(self.session, moto, n, without_snapshot=without_snapshot, older=older)
            write_inventory(self.wh, "aws", aws_inventory(self.estate))
            self.before = source_state(self.session, moto)
            return self.estate

    return World()


def drill(world, plan, gate, endpoint, **kw):
    driver = AwsDrillDriver(AwsDrillConfig(endpoint_url=endpoint, max_attempts=1))
    return run_drill(plan, warehouse=world.wh, driver=driver, gate=gate, store=kw.pop("store", None), audit=world.audit,
                     requested_by="cli:tester", as_of=date.today(), poll_interval=0.05, **kw)


def rows_by_asset(world):
    return {r["asset_id"]: r for r in drill_history(world.wh, date.today(), days=1).to_pylist()}


def test_a_drill_restores_each_vm_in_the_dr_region_measures_and_cleans_up(world, moto, gate):
    estate = world.seed(3, older=True)
    result = drill(world, drill_plan(), gate, moto)

    assert result.outcome == "passed", result.reason
    rows = rows_by_asset(world)
    assert sorted(rows) == estate.instances
    for iid, row in rows.items():
        assert row["outcome"] == "passed" and row["reason"] is None
        assert row["restore_point_id"] == estate.snapshots[iid]  # the NEWEST snapshot, not the older one
        assert row["target"] == DR and row["source_region"] == "ap-southeast-2"
        assert 0 < row["rto_seconds"] < 60 and row["rto_seconds"] == (row["healthy_at"] - row["started_at"]).total_seconds()
        assert row["rpo_achieved_seconds"] == (row["started_at"] - row["restore_point_at"]).total_seconds() >= 0
        steps = json.loads(row["steps"])
        assert [s["step"] for s in steps] == ["locate", "copy", "provision", "launch", "verify", "steady_state_after"]
        assert all(s["status"] == "ok" for s in steps)
        removed = json.loads(row["cleanup"])
        assert sorted(e["kind"] for e in removed) == ["image", "instance", "snapshot"] and all(e["removed"] for e in removed)
        assert row["cleaned_up"] is True
    assert tagged_in(world.session, moto, DR) == NONE_LEFT
    assert source_state(world.session, moto) == world.before  # the protected VMs were never touched
    kinds = [r.kind for r in world.audit.records(subject=result.drill_id)]
    assert kinds == ["drill_gate", "drill_started", *["drill_step"] * 5, "drill_cleanup", "drill_finished"]


def test_dry_run_lists_what_would_be_created_and_creates_nothing(world, moto, gate):
    estate = world.seed(2, without_snapshot=1)
    driver = AwsDrillDriver(AwsDrillConfig(endpoint_url=moto))
    result = dry_run(drill_plan(), warehouse=world.wh, driver=driver, gate=gate, requested_by="cli:tester", as_of=date.today())
    text = "\n".join(result.lines())
    ok, missing = estate.instances[0], estate.instances[1]
    assert f"restore point {estate.snapshots[ok]}" in text
    assert f"snapshot: copy of {estate.snapshots[ok]} (ap-southeast-2) in {DR}" in text
    assert "instance: t3.small from that image in us-west-2" in text
    assert result.problems[missing].startswith("locate: no restore point")
    assert tagged_in(world.session, moto, DR) == NONE_LEFT
    assert drill_history(world.wh, date.today(), days=1).num_rows == 0


def test_missing_restore_point_fails_that_vm_at_locate_and_the_others_pass(world, moto, gate):
    estate = world.seed(3, without_snapshot=1)
    result = drill(world, drill_plan(), gate, moto)
    rows = rows_by_asset(world)
    missing = estate.instances[-1]
    assert rows[missing]["outcome"] == "failed"
    assert rows[missing]["reason"].startswith(f"locate: no restore point: volume {estate.volumes[missing]}")
    assert rows[missing]["rto_seconds"] is None and rows[missing]["cleanup"] == "[]"
    assert [rows[i]["outcome"] for i in estate.instances[:-1]] == ["passed", "passed"]
    assert result.outcome == "failed"
    assert tagged_in(world.session, moto, DR) == NONE_LEFT
    assert source_state(world.session, moto) == world.before


def test_no_quota_in_the_dr_region_fails_at_launch_and_removes_the_copies_and_images(world, moto, gate):
    world.seed(2)

    def no_quota(req):
        if req.action == "RunInstances" and req.region == DR:
            return 400, ec2_error("InstanceLimitExceeded", "You have requested more instances than your current instance limit allows")
        return None

    with FaultProxy(moto, [no_quota]) as proxy:
        result = drill(world, drill_plan(), gate, proxy.url)
    assert result.outcome == "failed"
    for row in rows_by_asset(world).values():
        assert row["outcome"] == "failed"
        assert row["reason"].startswith("launch: no capacity in us-west-2 (InstanceLimitExceeded)")
        assert sorted(e["kind"] for e in json.loads(row["cleanup"])) == ["image", "snapshot"]
        assert row["cleaned_up"] is True
    assert tagged_in(world.session, moto, DR) == NONE_LEFT
    assert source_state(world.session, moto) == world.before


class StopAfterLaunch(AwsDrillDriver):
    """The real driver, except that the restored instances are stopped right after launch
    (a VM that never becomes healthy)."""

    def start(self, step, ctx, run):
        started = super().start(step, ctx, run)
        if step == "launch":
            self.ec2(ctx.target.region).stop_instances(InstanceIds=[run.state["instance"]])
        return started


def test_a_vm_that_never_becomes_healthy_fails_at_verify_and_is_cleaned_up(world, moto, gate):
    world.seed(1)
    runner = DrillRunner(StopAfterLaunch(AwsDrillConfig(endpoint_url=moto)), audit=world.audit, warehouse=world.wh,
                         actor="cli:tester", poll_interval=0.05)
    result = runner.run(drill_plan(), [_vm(world)])
    row = result.rows[0]
    assert row["outcome"] == "failed" and row["healthy_at"] is None and row["rto_seconds"] is None
    assert row["reason"].startswith("verify: restored instance i-") and "is stopped, it will not become healthy" in row["reason"]
    assert row["cleaned_up"] is True
    assert tagged_in(world.session, moto, DR) == NONE_LEFT


class SlowClock:
    """A monotonic clock on which every look costs 10 s: any step that waits overruns a 5 s timeout."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 10.0
        return self.t


def test_a_step_that_overruns_its_timeout_is_timed_out_naming_the_step(world, moto, gate):
    world.seed(1)
    runner = DrillRunner(AwsDrillDriver(AwsDrillConfig(endpoint_url=moto)), audit=world.audit, warehouse=world.wh,
                         actor="cli:tester", monotonic=SlowClock(), sleep=lambda _s: None, poll_interval=0.0)
    plan = drill_plan(timeouts={"locate": 60, "copy": 5})
    result = runner.run(plan, [_vm(world)])
    row = result.rows[0]
    assert row["outcome"] == "timed_out"
    assert row["reason"].startswith("copy: took") and "above the step's 5s timeout" in row["reason"]
    assert [s["status"] for s in json.loads(row["steps"])] == ["ok", "timed_out"]
    assert row["cleaned_up"] is True and [e["kind"] for e in json.loads(row["cleanup"])] == ["snapshot"]
    assert tagged_in(world.session, moto, DR) == NONE_LEFT


def test_rto_above_the_objective_is_a_deviation_naming_the_check(world, moto, gate):
    world.seed(1)
    runner = DrillRunner(AwsDrillDriver(AwsDrillConfig(endpoint_url=moto)), audit=world.audit, warehouse=world.wh,
                         actor="cli:tester", monotonic=SlowClock(), sleep=lambda _s: None, poll_interval=0.0)
    result = runner.run(drill_plan(rto=30), [_vm(world)])
    row = result.rows[0]
    assert row["outcome"] == "deviated" and row["healthy_at"] is not None
    assert row["reason"].startswith("steady_state_after: rto_within_objective: RTO") and "above the objective 30s" in row["reason"]
    assert tagged_in(world.session, moto, DR) == NONE_LEFT


def test_a_killed_run_leaves_tagged_resources_that_cleanup_finds_removes_and_journals(world, moto, gate, tmp_path):
    estate = world.seed(2)
    plan_file = tmp_path / "plan.yaml"
    plan = drill_plan()
    plan_file.write_text(plan.to_yaml())
    audit_url = f"sqlite:///{tmp_path / 'audit.db'}"
    env = loopback_env(moto, str(tmp_path))
    child = subprocess.run([sys.executable, "-c", "import sys; from tests.dr.support import killed_drill_main; "
                            "killed_drill_main(sys.argv[1:])", moto, world.wh.root, audit_url, str(plan_file)],
                           env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == -9 and "launched" in child.stdout, child.stderr[-2000:]
    left = tagged_in(world.session, moto, DR)
    assert len(left["instances"]) == 2 and len(left["images"]) == 2 and len(left["snapshots"]) == 2
    assert drill_history(world.wh, date.today(), days=1).num_rows == 0  # the killed run journaled nothing

    runner = DrillRunner(AwsDrillDriver(AwsDrillConfig(endpoint_url=moto)), audit=world.audit, warehouse=world.wh,
                         actor="cli:sweeper")
    removed = runner.sweep(plan)
    assert len(removed) == 6 and all(e["removed"] for e in removed)
    assert tagged_in(world.session, moto, DR) == NONE_LEFT
    rows = rows_by_asset(world)
    assert sorted(rows) == estate.instances
    for row in rows.values():
        assert row["outcome"] == "failed" and row["reason"].startswith("killed:")
        assert row["plan_hash"] == plan.plan_hash and row["cleaned_up"] is True
        assert sorted(e["kind"] for e in json.loads(row["cleanup"])) == ["image", "instance", "snapshot"]
    assert source_state(world.session, moto) == world.before
    assert [r.kind for r in world.audit.records()][-1] == "drill_leftovers_removed"


def test_a_prod_drill_waits_for_an_approval_of_its_hash_then_runs_once(world, moto, gate, tmp_path):
    from datetime import UTC, datetime

    world.seed(1)
    store = sqlite_task_store(tmp_path, lambda: datetime.now(UTC))
    world.audit = store.audit
    plan = drill_plan(environment="prod", autonomy="canary_only")
    with pytest.raises(DrillRefused, match="waiting for approval: task task-"):
        drill(world, plan, gate, moto, store=store)
    task = store.by_hash(plan.plan_hash)
    assert task.kind == "dr_drill" and task.state == "pending_approval"
    assert tagged_in(world.session, moto, DR) == NONE_LEFT
    with pytest.raises(ValueError, match="self-approval"):
        store.approve(task.id, task.plan_hash, "cli:tester", "my own drill")
    store.approve(task.id, task.plan_hash, "bob@example.com", "reviewed the plan")
    result = drill(world, plan, gate, moto, store=store)
    assert result.outcome == "passed"
    assert store.get(task.id).state == "succeeded"
    with pytest.raises(DrillRefused, match="an approval is used once"):
        drill(world, plan, gate, moto, store=store)


def _vm(world):
    from qlrf.dr.scope import resolve_scope

    return resolve_scope(drill_plan(), [{"platform": "aws", **r} for r in aws_inventory(world.estate)])[0]
