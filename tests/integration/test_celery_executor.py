"""The daily graph through real Celery workers over RabbitMQ, with Postgres run storage (issue 16).

One private stack for the module (tests/integration/celery_stack.py: its own vhost, database and
two workers, started once, always killed): the day on Celery must equal the day in process, byte
for byte for every Parquet partition except the one column that is the wall clock (inventory's
``discovered_at``); a worker killed mid-step must not cost the run or duplicate a partition; a
broker that goes away mid-run must fail the run, not hang it, and leave every partition whole.

Smallest data that proves it: one platform (vSphere, 24 VMs). Every wait is time-boxed and fails
saying what it waited for, with the workers' last log lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.fakes.tcp_proxy import TcpProxy
from tests.integration.celery_stack import (
    PROJECT,
    CeleryStack,
    day_differences,
    partition_files,
    small_estate,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DAY = date(2026, 11, 20)
PLATFORM = "vsphere"
PLATFORM_RUN = ("platform_daily_job", f"{DAY.isoformat()}|{PLATFORM}")
DAY_RUNS = [("golden_images_job", DAY.isoformat()), PLATFORM_RUN, ("fleet_report_job", DAY.isoformat())]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Stack open, a 24-VM estate, two workers answering; the in-process reference day runs meanwhile."""
    root = tmp_path_factory.mktemp("celery")
    st = CeleryStack(root, workers=2, concurrency=1)
    reference = None
    try:
        st.open()
        small_estate(root / "estate", DAY)
        st.start_workers()
        env = {k: v for k, v in st.env().items() if not k.startswith(("QLRF_", "DAGSTER_"))}
        env.update(QLRF_HOME=str(root / "ref"), QLRF_ESTATE_DIR=str(root / "estate"), QLRF_AUDIT_DIR=str(root / "ref-audit"))
        reference = subprocess.Popen(  # the same day in process, the default executor, SQLite: the yardstick
            [sys.executable, "-m", "pipelines.run", "--in-process", "--platform", PLATFORM, "--date", DAY.isoformat()],
            env=env, cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        st.wait_ready(timeout=90)
        st.reference = reference
        yield st
    finally:
        if reference is not None and reference.poll() is None:
            reference.kill()
        st.close()


def orchestrate(st: CeleryStack, runs, *, timeout: float, env: dict | None = None) -> subprocess.Popen:
    """Start `python -m pipelines.celery_profile run job=key ...` (this stack's env): it orchestrates, the workers execute."""
    argv = [sys.executable, "-m", "pipelines.celery_profile", "run", *(f"{job}={key}" for job, key in runs)]
    proc = subprocess.Popen(argv, env=env or st.env(), cwd=PROJECT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.deadline = time.monotonic() + timeout
    return proc


def finish(st: CeleryStack, proc: subprocess.Popen, what: str) -> list[dict]:
    """The orchestrator's run lines once it exits; a clear failure (with the workers' logs) if it does not in time."""
    try:
        out, err = proc.communicate(timeout=max(1.0, proc.deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        logs = "\n".join(st.log_tail(name) for name in st.procs)
        pytest.fail(f"{what}: the Celery run did not finish in time.\nstderr: {err[-1500:]}\nworkers:\n{logs}")
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if not lines:
        pytest.fail(f"{what}: no run was recorded (exit {proc.returncode}): {err[-1500:]}")
    return lines


@contextlib.contextmanager
def instance_of(st: CeleryStack):
    """The stack's Postgres-backed Dagster instance, read from this process."""
    from dagster import DagsterInstance

    saved = os.environ.get("QLRF_DAGSTER_PG_URL")
    os.environ["QLRF_DAGSTER_PG_URL"] = st.env()["QLRF_DAGSTER_PG_URL"]
    try:
        with DagsterInstance.from_config(str(st.dagster_home)) as instance:
            yield instance
    finally:
        if saved is None:
            os.environ.pop("QLRF_DAGSTER_PG_URL", None)
        else:
            os.environ["QLRF_DAGSTER_PG_URL"] = saved


def celery_steps(instance, run_id: str) -> list[tuple[str, str]]:
    """(step key, worker name) for every step a Celery worker started in `run_id`, in order."""
    from dagster import DagsterEventType

    found = []
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        metadata = entry.dagster_event.engine_event_data.metadata or {}
        if "Celery worker" in metadata:
            found.append((entry.dagster_event.step_key, metadata["Celery worker"].value.split("@")[0]))
    return found


def assert_same_day(celery_wh: Path, reference_wh: Path) -> None:
    """Every partition file of the reference is there, with the same bytes, except wall-clock columns."""
    ours = partition_files(celery_wh)
    assert len(ours) >= 20 and all(name.endswith("part.parquet") for name in ours), sorted(ours)
    assert day_differences(celery_wh, reference_wh) == []


def test_the_day_on_celery_workers_equals_the_in_process_day(stack):
    started = time.monotonic()
    lines = finish(stack, orchestrate(stack, DAY_RUNS, timeout=150), "golden -> vsphere -> fleet on Celery")
    assert [(line["job"], line["success"]) for line in lines] == [(job, True) for job, _ in DAY_RUNS], lines
    try:
        out, _ = stack.reference.communicate(timeout=max(5.0, 150 - (time.monotonic() - started)))
    except subprocess.TimeoutExpired:
        pytest.fail("the in-process reference day did not finish in time")
    assert stack.reference.returncode == 0, out[-2000:]

    with instance_of(stack) as instance:
        platform_run = next(line["run_id"] for line in lines if line["job"] == PLATFORM_RUN[0])
        steps = celery_steps(instance, platform_run)
        run = instance.get_run_by_id(platform_run)
        from dagster import DagsterEventType

        submitted = [e.message for e in instance.all_logs(platform_run, of_type=DagsterEventType.ENGINE_EVENT)
                     if e.message and e.message.startswith("Submitting celery task")]
    # Every step ran on one of this stack's workers, recorded in its Postgres instance.
    assert steps and {worker for _, worker in steps} <= set(stack.procs), steps
    assert run.tags["dagster/partition"] == PLATFORM_RUN[1]
    # Discovery went to the cloud-API queue (assets/routing.py), the rest to the default one.
    api = [m for m in submitted if m.endswith('to queue "qlrf-api".')]
    assert api and all("discover_scope" in m for m in api), submitted  # the fan-out's per-batch steps
    assert 'Submitting celery task for step "inventory_assets" to queue "qlrf".' in submitted, submitted
    assert_same_day(stack.root / "warehouse", stack.root / "ref" / "warehouse")


def test_a_worker_killed_mid_step_costs_neither_the_run_nor_a_duplicate_partition(stack):
    """SIGSTOP the worker that just took a step; if the step has not finished, SIGKILL it (mid-step for sure)."""
    from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

    before = partition_files(stack.root / "warehouse")
    proc = orchestrate(stack, [PLATFORM_RUN], timeout=90)
    victim = step = None
    with instance_of(stack) as instance:
        deadline = time.monotonic() + 40
        seen: set[tuple[str, str]] = set()
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            runs = instance.get_runs(RunsFilter(job_name=PLATFORM_RUN[0], statuses=[DagsterRunStatus.STARTED]))
            for run in runs:
                for step_key, worker in celery_steps(instance, run.run_id):
                    if (step_key, worker) in seen:
                        continue
                    seen.add((step_key, worker))
                    stack.kill_worker(worker, signal.SIGSTOP)
                    done = [e for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS)
                            if e.step_key == step_key]
                    if done:
                        stack.kill_worker(worker, signal.SIGCONT)
                        continue
                    stack.kill_worker(worker, signal.SIGKILL)
                    victim, step, run_id = worker, step_key, run.run_id
                    break
                if victim:
                    break
            time.sleep(0.05)
        lines = finish(stack, proc, f"platform run after killing worker {victim} mid-step {step}")
        assert victim is not None, "no step was caught in flight: nothing was killed"
        assert lines[0]["success"], lines
        taken = [w for s, w in celery_steps(instance, run_id) if s == step]
        successes = [e for e in instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS) if e.step_key == step]
    # The step went back to the queue when its worker died and the other worker ran it, once to the end.
    assert taken[0] == victim and len(taken) == 2 and taken[1] != victim, taken
    assert len(successes) == 1
    after = partition_files(stack.root / "warehouse")
    assert sorted(after) == sorted(before), "a partition was duplicated"
    hidden = [p.name for p in (stack.root / "warehouse").rglob(".*") if p.is_file()]
    assert all(name.endswith(".tmp") for name in hidden), hidden  # at most a killed writer's temporary
    assert_same_day(stack.root / "warehouse", stack.root / "ref" / "warehouse")


def test_the_broker_going_away_mid_run_fails_the_run_and_leaves_every_partition_whole(stack):
    """The orchestrator reaches RabbitMQ through a TCP proxy (the machine's broker is shared: never restarted);
    the proxy is cut once discovery has finished."""
    from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

    live = [name for name, p in stack.procs.items() if p.poll() is None]
    assert live, "no worker left alive by the earlier tests"
    before = {name: path.read_bytes() for name, path in partition_files(stack.root / "warehouse").items()}
    with TcpProxy(("127.0.0.1", 5672)) as proxy, instance_of(stack) as instance:
        env = stack.env()
        env["QLRF_CELERY_BROKER_URL"] = f"amqp://guest:guest@{proxy.address}/{stack.vhost}"
        proc = orchestrate(stack, [PLATFORM_RUN], timeout=90, env=env)
        deadline, cut_at = time.monotonic() + 40, None
        while cut_at is None and time.monotonic() < deadline and proc.poll() is None:
            for run in instance.get_runs(RunsFilter(job_name=PLATFORM_RUN[0], statuses=[DagsterRunStatus.STARTED])):
                if any(e.step_key == "inventory_assets"
                       for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS)):
                    proxy.cut()
                    cut_at, run_id = time.monotonic(), run.run_id
                    break
            time.sleep(0.05)
        assert cut_at is not None, "discovery never finished through the proxy: nothing was cut"
        lines = finish(stack, proc, "platform run with the broker cut")
        waited = time.monotonic() - cut_at
        run = instance.get_run_by_id(run_id)
    assert not lines[0]["success"] and run.status == DagsterRunStatus.FAILURE, (lines, run.status)
    assert waited < 45, f"the run took {waited:.0f}s to fail after the broker went away"
    # Every partition is whole: the same files, each readable with all its rows, no temporary left.
    after = partition_files(stack.root / "warehouse")
    assert sorted(after) == sorted(before)
    for name, path in after.items():
        table = pq.read_table(path)
        assert table.num_rows == pq.read_table(stack.root / "ref" / "warehouse" / name).num_rows, name
