"""`qlrf run`'s two modes (pipelines/modes.py) do the same day: the same runs, partitions, failure lines
and exit code; only the launched runs carry the code-location origin the Dagster UI's timeline needs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dagster import DagsterInstance

from pipelines.modes import MODE_LINES
from pipelines.run import MODE_TAG
from qlrf.settings import run_mode_setting
from tests.pipelines.conftest import DAY

RESULT_LINE = re.compile(r"^  (ok|FAIL) +(.+?) +\d+\.\ds  run [0-9a-f]{8}(.*)$")


def _results(stdout: str) -> list[tuple[str, str, str]]:
    """(ok|FAIL, label, failure text) of each partition line, without its timing and run id."""
    return [m.groups() for m in map(RESULT_LINE.match, stdout.splitlines()) if m]


def _runs(home: Path) -> list[tuple]:
    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        return sorted((r.job_name, r.tags["dagster/partition"], r.status.value, r.tags[MODE_TAG],
                       r.remote_job_origin is not None) for r in instance.get_runs())


def _partitions(home: Path) -> list[str]:
    """Every partition directory written to the warehouse, relative to it."""
    root = home / "warehouse"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*=*") if p.is_dir())


def test_the_mode_comes_from_the_variable_launch_by_default():
    assert run_mode_setting({}) == "launch"
    assert run_mode_setting({"QLRF_RUN_MODE": " In_Process "}) == "in_process"
    with pytest.raises(ValueError, match=r"^QLRF_RUN_MODE='inprocess': expected one of launch, in_process$"):
        run_mode_setting({"QLRF_RUN_MODE": "inprocess"})


@pytest.mark.slow
@pytest.mark.parametrize("failing", [False, True], ids=["succeeding day", "failing day"])
def test_both_modes_do_the_same_day(day_run, failing):
    launched, in_process = day_run("launch", failing), day_run("in_process", failing)
    for run, mode in ((launched, "launch"), (in_process, "in_process")):
        assert f"  mode: {MODE_LINES[mode]}\n" in run.proc.stdout
    assert launched.proc.returncode == in_process.proc.returncode == (1 if failing else 0), \
        launched.proc.stdout + launched.proc.stderr + in_process.proc.stdout + in_process.proc.stderr
    results = _results(launched.proc.stdout)
    assert [label for _, label, _ in results] == ["golden images", "vsphere", "fleet report"]
    assert _results(in_process.proc.stdout) == results  # the failure lines too, word for word
    statuses = [status for status, _, _ in results]
    assert statuses == (["ok", "FAIL", "FAIL"] if failing else ["ok", "ok", "ok"])
    if failing:
        assert "FileNotFoundError: /nonexistent/qlrf-exports: no *.json exports for vsphere" in results[1][2]
        # discovery is its own step now (assets/discovery.py): a plan of one batch fails it with the error
        assert "error: vsphere: discovered_inventory.discover_scope[b0000_all]: FileNotFoundError" in in_process.proc.stderr

    runs = {mode: _runs(day.home) for mode, day in (("launch", launched), ("in_process", in_process))}
    assert [r[:3] for r in runs["launch"]] == [r[:3] for r in runs["in_process"]]  # job, partition, status
    assert {r[3:] for r in runs["launch"]} == {("launch", True)}  # the UI's own runs
    assert {r[3:] for r in runs["in_process"]} == {("in_process", False)}  # outside the UI's timeline
    assert _partitions(launched.home) == _partitions(in_process.home)
    assert all(f"date={DAY}" in p for p in _partitions(in_process.home))
    assert any(p.startswith("golden_images/") for p in _partitions(in_process.home))
    assert any(p.startswith("fleet_report/") for p in _partitions(in_process.home)) is not failing
