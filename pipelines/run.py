"""Run a whole day of the graph on the current instance: what `qlrf run` and `make run` call.

Each partition is its own run (golden images, then every platform, then the fleet roll-up). By
default each is launched through the code location as the Dagster UI launches them
(pipelines/launch.py), so they show in the UI's Overview timeline and re-execute from it like its
own; `--in-process` (or QLRF_RUN_MODE=in_process) executes them in this process instead, several
times faster, outside the timeline (pipelines/modes.py). A failing platform does not stop the
others; the run exits non-zero and says which failed and why.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import sys
import time
import uuid
import warnings
from datetime import UTC, date, datetime

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from pipelines.instance import prepare_dagster_home
from pipelines.launch import prepare_launch_home
from pipelines.modes import MODE_LINES, RunStrategy, strategy_for
from qlrf.ai.summary import stored_summary
from qlrf.cli import OneLineParser, add_run_mode_arguments
from qlrf.dates import argparse_date, partitions_start
from qlrf.inventory.contract import PLATFORMS
from qlrf.progress import Progress
from qlrf.scoring.report import report_text
from qlrf.settings import Settings, run_mode_setting, shown
from qlrf.warehouse import Warehouse

SESSION_TAG = "qlrf/session"  # one value per `qlrf run`, so its unfinished runs can be found and failed
MODE_TAG = "qlrf/run_mode"  # launch | in_process (pipelines/modes.py)


class Stopped(Exception):
    """A stop signal arrived: the day was cut short after a whole partition."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Which stop signals (Ctrl-C, SIGTERM, SIGHUP: the terminal or the parent went away) have arrived.

    Dagster's in-process execution installs its own SIGINT/SIGTERM handlers while a run executes and
    drops what they caught when the run ends, so a handler of ours would never see a signal sent
    mid-run. Python's wakeup fd is written by the C-level handler whatever Python handler is set, so
    the signal is read back between runs: the run in flight finishes its partitions (each is written
    atomically), no further run starts, and none is left "started" in the instance.
    """

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self.received: list[str] = []

    def __enter__(self) -> StopSignals:
        self._old_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        self._old = {sig: signal.signal(sig, lambda *_: None) for sig in STOP_SIGNALS}
        _die_with_parent()
        return self

    def __exit__(self, *_exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._old_fd)
        self._reader.close()
        self._writer.close()

    def requested(self) -> bool:
        """Whether a stop signal has arrived (reading what the wakeup fd holds, raising nothing)."""
        try:
            data = self._reader.recv(512)
        except BlockingIOError:
            data = b""
        self.received += [signal.Signals(n).name for n in data if n in {int(s) for s in STOP_SIGNALS}]
        return bool(self.received)

    def check(self) -> None:
        """Raise Stopped if a stop signal has arrived."""
        if self.requested():
            raise Stopped(f"stopped by {self.received[0]}")


def _die_with_parent() -> None:
    """Linux: have the kernel send SIGTERM when the parent process dies (an orphaned run stops too)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def fail_unfinished_runs(instance: DagsterInstance, session: str, why: str) -> list[str]:
    """Mark this session's runs that never finished as failed, so the UI does not show them running forever."""
    unfinished = instance.get_runs(
        RunsFilter(tags={SESSION_TAG: session}, statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING,
                                                          DagsterRunStatus.NOT_STARTED, DagsterRunStatus.QUEUED])
    )
    for run in unfinished:
        instance.report_run_failed(run, message=f"qlrf run was {why}")
    return [run.run_id for run in unfinished]


def day_plan(day: date, platforms: list[str]) -> list[list[tuple[str, str, str]]]:
    """Phases of (job, partition key, label): golden images, then every platform at once, then the roll-up.

    The platform runs read the same golden images and nothing of each other, so they are launched
    together; each phase starts when the one before has finished.
    """
    return [
        [("golden_images_job", day.isoformat(), "golden images")],
        [("platform_daily_job", f"{day.isoformat()}|{p}", p) for p in platforms],  # dimensions in name order
        [("fleet_report_job", day.isoformat(), "fleet report")],
    ]


def run_day(
    day: date, platforms: list[str], instance: DagsterInstance, strategy: RunStrategy, log=print,
    session: str | None = None, stop: StopSignals | None = None, progress=None,
) -> list[str]:
    """Materialise every asset for `day`; returns failure messages (empty when all succeeded).

    `strategy` (pipelines/modes.py) starts each run and waits for it; everything else is this loop's.
    With `stop`, a stop signal ends the day after the runs in flight: runs not yet started never start,
    any of this call's runs still unfinished is marked failed, and Stopped is raised. `progress` (a
    qlrf.progress.Progress) is told which runs are in flight and when each is done.
    """
    session = session or uuid.uuid4().hex
    phases = day_plan(day, platforms)
    failures = []
    tags = {"qlrf/trigger": "qlrf run", SESSION_TAG: session, MODE_TAG: strategy.mode}
    for index, phase in enumerate(phases):
        if progress is not None:
            progress.doing(", ".join(label for _, _, label in phase))
        pendings = [strategy.start(job_name, key, label, tags) for job_name, key, label in phase]
        skipped = []
        for pending in pendings:
            if not pending.started and stop is not None and stop.requested():
                skipped.append(pending.label)
                continue
            label = pending.label
            watch = (lambda step, label=label: progress.doing(f"{label}: {step}")) if progress and progress.enabled else None
            outcome = strategy.wait(pending, watch=watch)
            if progress is not None:
                progress.advance()
            run = outcome.run_id[:8]
            if outcome.success and not outcome.failed_checks:
                log(f"  ok    {label:<14} {outcome.seconds:5.1f}s  run {run}")
            elif outcome.success:
                message = "check(s) failed: " + ", ".join(outcome.failed_checks)
                failures.append(f"{label}: {message}")
                log(f"  FAIL  {label:<14} {outcome.seconds:5.1f}s  run {run}  {message}")
            else:
                failures.append(f"{label}: {outcome.failure}")
                log(f"  FAIL  {label:<14} {outcome.seconds:5.1f}s  run {run}  {outcome.failure}")
        try:
            if stop is not None:
                stop.check()
        except Stopped as stopped:
            failed = fail_unfinished_runs(instance, session, str(stopped))
            rest = skipped + [label for later in phases[index + 1:] for _, _, label in later]
            log(f"  STOP  {stopped}: not started: {', '.join(rest) or 'nothing'}"
                + (f"; {len(failed)} unfinished run(s) marked failed" if failed else ""))
            raise
    return failures


def main(argv: list[str] | None = None, *, today: date | None = None) -> int:
    """`today` bounds the dates --date accepts (a real ISO day in the partitions); tests pin it."""
    today = today or datetime.now(UTC).date()
    try:
        first = partitions_start()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    parser = OneLineParser(prog="qlrf run")
    parser.add_argument("--date", default=today.isoformat(), type=argparse_date(today, first))
    parser.add_argument("--platform", action="append", choices=PLATFORMS)
    add_run_mode_arguments(parser)
    args = parser.parse_args(argv)
    # Dagster 1.13 itself passes its beta `owners` parameter when it resolves any sensor; the warning
    # it prints says nothing about this project, so keep it out of the report.
    warnings.filterwarnings("ignore", message="Parameter `owners`")
    day = args.date
    try:
        settings = Settings.from_env()
        mode = args.mode or run_mode_setting()
    except ValueError as exc:  # a malformed QLRF_* variable: named in one line, exit 2
        print(f"error: {exc}", file=sys.stderr)
        return 2
    home = prepare_dagster_home(settings)
    launch_home = prepare_launch_home(settings, home) if mode == "launch" else None
    try:
        swept = Warehouse(settings.warehouse).sweep_temporaries(datetime.now(UTC))
    except OSError as exc:  # an object store that cannot be reached: say so now, not as a traceback per asset
        print(f"error: the warehouse {shown(settings.warehouse)} cannot be reached: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if swept:
        print(f"  removed {len(swept)} temporary file(s) an interrupted run left in the warehouse", file=sys.stderr)
    started = time.perf_counter()
    print(f"Resilience Fabric: materialising {day} for {', '.join(args.platform or PLATFORMS)}")
    print(f"  Dagster instance: {f'postgres ({settings.postgres_shown})' if settings.postgres_url else 'sqlite'} at {shown(home)}")
    print(f"  mode: {MODE_LINES[mode]}")
    platforms = list(args.platform or PLATFORMS)
    try:
        with (StopSignals() as stop, DagsterInstance.get() as instance,
              Progress(sum(map(len, day_plan(day, platforms))), f"{day} partitions") as progress):
            strategy = strategy_for(mode, instance, launch_home)
            failures = run_day(day, platforms, instance, strategy, stop=stop, progress=progress)
    except Stopped as stopped:
        print(f"error: {stopped}; the partitions written are whole, the rest were not written", file=sys.stderr)
        return 130
    total = time.perf_counter() - started
    print(f"  graph complete in {total:.1f}s" + (f" with {len(failures)} failure(s)" if failures else ""))
    print()
    try:
        print(report_text(Warehouse(settings.warehouse), day))
    except FileNotFoundError as exc:
        for failure in failures:  # why there is no report comes first
            print(f"error: {failure}", file=sys.stderr)
        print(f"no report: {exc}", file=sys.stderr)
        return 1
    summary = stored_summary(Warehouse(settings.warehouse), day)
    if summary:
        print(f"Summary ({summary['source']}): {summary['headline']}")
        for action in summary["actions"][:3]:
            print(f"  - [{action['urgency']}] {action['title']}")
        print()
    print(f"Dagster runs: DAGSTER_HOME={shown(home)} (`make serve` opens the UI)")
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
