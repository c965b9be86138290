"""Launch a run the way the Dagster UI does: through the code location, by the instance's run launcher.

A run executed in process (``execute_in_process``) carries no code-location origin, so the UI leaves
it out of the Overview timeline and warns when it is re-executed. ``dagster job launch`` (the public
CLI over the workspace) creates the run from the code location named in workspace.yaml, with its
remote origin, and hands it to the instance's run launcher: the run is then the UI's own.

The instance's run coordinator may queue runs for the daemon (Dagster's default), and `qlrf run`
must work without `make serve`. So the launch goes through a second instance file,
``$DAGSTER_HOME/qlrf-run/dagster.yaml``, written from the same settings: the same storage (the runs,
events and logs land where the UI reads them) and the same run launcher, with Dagster's
DefaultRunCoordinator, which launches at once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dagster import AssetCheckSeverity, DagsterEventType, DagsterInstance, DagsterRun

from pipelines.instance import instance_config, write_instance_yaml
from qlrf.settings import Settings, project_root

LAUNCH_DIR = "qlrf-run"
LOCATION_NAME = "resilience_fabric"  # workspace.yaml's location_name
DEFAULT_COORDINATOR = {"module": "dagster.core.run_coordinator", "class": "DefaultRunCoordinator"}


def launch_instance_config(settings: Settings, home: Path) -> dict:
    """The instance config `qlrf run` launches through: `home`'s storage, launching without the daemon."""
    config = instance_config(settings)
    if "storage" not in config:  # SQLite: name the instance's own directory, not this file's
        config["storage"] = {"sqlite": {"base_dir": str(home)}}
    config["local_artifact_storage"] = {
        "module": "dagster.core.storage.root", "class": "LocalArtifactStorage", "config": {"base_dir": str(home)}}
    config["compute_logs"] = {
        "module": "dagster.core.storage.local_compute_log_manager", "class": "LocalComputeLogManager",
        "config": {"base_dir": str(home / "storage")}}
    config["run_coordinator"] = DEFAULT_COORDINATOR
    return config


def prepare_launch_home(settings: Settings, home: Path) -> Path:
    """Write ``home/qlrf-run/dagster.yaml`` (see the module docstring); returns its directory."""
    launch_home = home / LAUNCH_DIR
    launch_home.mkdir(parents=True, exist_ok=True)
    write_instance_yaml(launch_home / "dagster.yaml", launch_instance_config(settings, home))
    return launch_home


class LaunchFailed(Exception):
    """`dagster job launch` created no run (the code location failed to load, say)."""


@dataclass(frozen=True)
class Launched:
    """A finished run, read back from the instance."""

    run: DagsterRun
    failed_checks: list[str]  # asset:check of every ERROR check that did not pass
    failure: str | None  # the first failed step's root cause, in one line

    @property
    def success(self) -> bool:
        return self.run.is_success


def start_launch(
    launch_home: Path, job_name: str, partition_key: str, tags: Mapping[str, str], run_id: str, run_config: Mapping,
) -> subprocess.Popen:
    """Start `dagster job launch` for `job_name` x `partition_key` through the workspace (see finish_launch).

    The launcher runs in its own session: a Ctrl-C at the terminal reaches `qlrf run`, which stops
    after the runs in flight, instead of killing a run halfway through its partition.
    """
    argv = [
        str(Path(sys.executable).parent / "dagster"), "job", "launch", "-w", str(project_root() / "workspace.yaml"),
        "-l", LOCATION_NAME, "-j", job_name, "--run-id", run_id,
        "--tags", json.dumps({**tags, "dagster/partition": partition_key}), "--config-json", json.dumps(run_config),
    ]
    env = {**os.environ, "DAGSTER_HOME": str(launch_home)}
    # Its output goes to a file, not a pipe: the code server and the run worker inherit the stream, and a
    # pipe nobody reads while another run is awaited could stall them.
    with launch_log(launch_home, run_id).open("w") as log:
        return subprocess.Popen(argv, env=env, cwd=project_root(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def launch_log(launch_home: Path, run_id: str) -> Path:
    """Where the launcher of `run_id` writes (kept when the launch fails, removed when the run exists)."""
    (launch_home / "logs").mkdir(exist_ok=True)
    return launch_home / "logs" / f"{run_id}.log"


def finish_launch(
    instance: DagsterInstance, launch_home: Path, launcher: subprocess.Popen, run_id: str, what: str, *,
    poll_seconds: float = 0.5, sleep: Callable[[float], None] = time.sleep, watch: Callable[[str], None] | None = None,
) -> Launched:
    """Wait for the launcher, then for its run to finish; LaunchFailed if it created none.

    `watch`, when given, is told the step (asset) in flight at every poll: what a progress bar shows."""
    launcher.wait()
    log = launch_log(launch_home, run_id)
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise LaunchFailed(f"{what}: dagster job launch created no run ({last_line(log.read_text())}; log {log})")
    log.unlink(missing_ok=True)
    while not run.is_finished:
        if watch is not None:
            started = instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
            if started:
                watch(started[-1].dagster_event.step_key)
        sleep(poll_seconds)
        run = instance.get_run_by_id(run_id)
    return Launched(run, failed_error_checks(instance, run_id), None if run.is_success else failure_text(instance, run_id))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def last_line(text: str) -> str:
    """The launcher's error in one line: its last `Error...` line, else its last line that is not the
    code server's own logging (colour codes removed)."""
    lines = [_ANSI.sub("", line).strip() for line in (text or "").splitlines()]
    lines = [line for line in lines if line and " - dagster" not in line and "Warning" not in line]
    errors = [line for line in lines if line.startswith(("Error", "dagster.")) or "Error:" in line]
    return (errors or lines or ["no output"])[-1]


def failed_error_check_names(evaluations: Iterable) -> list[str]:
    """`asset:check` for every check of error severity that did not pass (warnings do not fail a day).

    A non-blocking check (a failed region, say) lets the run succeed so the rest is usable, but the
    day is not whole: `qlrf run` must say so and exit non-zero.
    """
    return [f"{e.asset_key.to_user_string()}:{e.check_name}" for e in evaluations
            if not e.passed and e.severity == AssetCheckSeverity.ERROR]


def failed_error_checks(instance: DagsterInstance, run_id: str) -> list[str]:
    """failed_error_check_names of a finished run, read from the instance."""
    entries = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    return failed_error_check_names(entry.dagster_event.event_specific_data for entry in entries)


def failure_text(instance: DagsterInstance, run_id: str) -> str:
    """The root cause of the run's first failed step, in one line (the full trace is in the Dagster UI)."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        error = getattr(entry.dagster_event.event_specific_data, "error", None)
        if error is not None:
            while error.cause is not None:
                error = error.cause
            return f"{entry.dagster_event.step_key}: {error.message.strip().splitlines()[-1]}"
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE):
        if entry.dagster_event.message:
            return entry.dagster_event.message.strip().splitlines()[-1]
    return "failed (see the Dagster UI for the run's logs)"
