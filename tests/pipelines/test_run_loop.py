"""run_day's one loop over a strategy that runs one partition at a time (as in-process mode does): a stop
signal that arrives mid-phase lets the partition in flight finish and starts none of the rest."""

from __future__ import annotations

import os
import signal
from datetime import date

import pytest
from dagster import DagsterInstance

from pipelines.modes import Outcome, Pending
from pipelines.run import Stopped, StopSignals, run_day


class OnePartitionAtATime:
    """Starts nothing until waited for; the `stop_at`-th partition waited for sends this process SIGTERM."""

    mode = "in_process"

    def __init__(self, stop_at: int | None = None) -> None:
        self.executed: list[str] = []
        self.stop_at = stop_at

    def start(self, job_name, partition_key, label, tags) -> Pending:
        return Pending(job_name, partition_key, label, tags)

    def wait(self, pending: Pending, watch=None) -> Outcome:
        pending.started = True
        self.executed.append(pending.label)
        if len(self.executed) == self.stop_at:
            os.kill(os.getpid(), signal.SIGTERM)  # a real signal, caught by StopSignals' wakeup fd
        failed = ["inventory:all_scopes_discovered"] if pending.label == "gcp" else []
        return Outcome(pending.run_id, True, failed, None, 0.1)


def test_a_stop_mid_phase_skips_the_partitions_not_yet_started():
    strategy, lines = OnePartitionAtATime(stop_at=2), []
    with DagsterInstance.ephemeral() as instance, StopSignals() as stop, pytest.raises(Stopped, match="SIGTERM"):
        run_day(date(2026, 11, 20), ["aws", "gcp", "vsphere"], instance, strategy, log=lines.append, stop=stop)
    assert strategy.executed == ["golden images", "aws"]
    assert lines[-1] == "  STOP  stopped by SIGTERM: not started: gcp, vsphere, fleet report"


def test_without_a_stop_every_partition_runs_and_failed_checks_fail_the_day():
    strategy, lines = OnePartitionAtATime(), []
    with DagsterInstance.ephemeral() as instance:
        failures = run_day(date(2026, 11, 20), ["aws", "gcp"], instance, strategy, log=lines.append)
    assert strategy.executed == ["golden images", "aws", "gcp", "fleet report"]
    assert failures == ["gcp: check(s) failed: inventory:all_scopes_discovered"]
    assert [line.split()[:2] for line in lines] == [["ok", "golden"], ["ok", "aws"], ["FAIL", "gcp"], ["ok", "fleet"]]
