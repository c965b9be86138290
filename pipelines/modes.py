"""How `qlrf run` starts one partition's run and waits for it: the only thing its two modes do differently.

`launch` (the default, what `make run` does) hands each run to the code location as the Dagster UI
does (pipelines/launch.py): the runs carry their remote origin, so the UI's Overview timeline lists
them and re-executes them like its own; each launch loads the definitions twice (code server, run
worker), which costs several times the wall time of the runs themselves.

`in_process` executes each run inside the `qlrf run` process (``execute_in_process``), one after the
other: the runs, events and materialisations land in the same instance, but without a code-location
origin, so the UI leaves them out of its Overview timeline. Tests that run whole days for their
results, not for the UI, use it.

run_day (pipelines/run.py) keeps the one loop (phases, progress, stop signals, failure lines); a
strategy only starts a run (`start`) and waits for its outcome (`wait`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from dagster import DagsterInstance

from pipelines.launch import LaunchFailed, failed_error_check_names, finish_launch, start_launch

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}

MODE_LINES = {
    "launch": "launch (each partition launched through the code location, as the Dagster UI does; "
              "--in-process is faster)",
    "in_process": "in-process (faster; these runs are recorded in the instance but do not appear in the "
                  "Dagster UI's Overview timeline)",
}


@dataclass
class Pending:
    """A run asked for. `started` False means nothing has executed yet, so a stop signal can still skip it."""

    job_name: str
    partition_key: str
    label: str
    tags: Mapping[str, str]
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: bool = False
    started_at: float = 0.0
    launcher: object = None  # launch mode: the `dagster job launch` process


@dataclass(frozen=True)
class Outcome:
    """A finished run as `qlrf run` reports it."""

    run_id: str
    success: bool
    failed_checks: list[str]  # asset:check of every ERROR check that did not pass
    failure: str | None  # the first failed step's root cause, in one line
    seconds: float


class RunStrategy(Protocol):
    mode: str

    def start(self, job_name: str, partition_key: str, label: str, tags: Mapping[str, str]) -> Pending: ...

    def wait(self, pending: Pending, watch: Callable[[str], None] | None = None) -> Outcome: ...


class LaunchStrategy:
    """Every run of a phase launched at once through the code location; waiting reads the instance."""

    mode = "launch"

    def __init__(self, instance: DagsterInstance, launch_home: Path) -> None:
        self.instance, self.launch_home = instance, launch_home

    def start(self, job_name: str, partition_key: str, label: str, tags: Mapping[str, str]) -> Pending:
        pending = Pending(job_name, partition_key, label, tags, started=True, started_at=time.perf_counter())
        pending.launcher = start_launch(self.launch_home, job_name, partition_key, tags, pending.run_id, QUIET)
        return pending

    def wait(self, pending: Pending, watch: Callable[[str], None] | None = None) -> Outcome:
        try:
            launched = finish_launch(self.instance, self.launch_home, pending.launcher, pending.run_id, pending.label,
                                     watch=watch)
            success, failed_checks, failure = launched.success, launched.failed_checks, launched.failure
        except LaunchFailed as exc:
            success, failed_checks, failure = False, [], str(exc)
        return Outcome(pending.run_id, success, failed_checks, failure, time.perf_counter() - pending.started_at)


class InProcessStrategy:
    """Runs execute one at a time, when waited for, in this process."""

    mode = "in_process"

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance

    def start(self, job_name: str, partition_key: str, label: str, tags: Mapping[str, str]) -> Pending:
        return Pending(job_name, partition_key, label, tags)

    def wait(self, pending: Pending, watch: Callable[[str], None] | None = None) -> Outcome:
        # Loading the definitions reads the settings: at run time, never at import.
        from pipelines.definitions import defs

        pending.started, pending.started_at = True, time.perf_counter()
        result = defs.resolve_job_def(pending.job_name).execute_in_process(
            run_config=QUIET, instance=self.instance, partition_key=pending.partition_key, raise_on_error=False,
            tags=pending.tags, run_id=pending.run_id,
        )
        return Outcome(result.run_id, result.success, failed_error_checks(result),
                       None if result.success else failure_text(result), time.perf_counter() - pending.started_at)


def strategy_for(mode: str, instance: DagsterInstance, launch_home: Path | None) -> RunStrategy:
    if mode == "in_process":
        return InProcessStrategy(instance)
    if launch_home is None:
        raise ValueError("launch mode needs the launch instance's home (pipelines.launch.prepare_launch_home)")
    return LaunchStrategy(instance, launch_home)


def failed_error_checks(result) -> list[str]:
    """failed_error_check_names of an in-process ExecutionResult."""
    return failed_error_check_names(result.get_asset_check_evaluations())


def failure_text(result) -> str:
    """The root cause of the first failed step of an in-process result, in one line (the trace is in the UI)."""
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None) if event.is_step_failure else None
        if error is not None:
            while error.cause is not None:
                error = error.cause
            return f"{event.step_key}: {error.message.strip().splitlines()[-1]}"
    return "failed (see the Dagster UI for the run's logs)"
