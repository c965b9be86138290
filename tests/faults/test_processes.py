"""Fault catalogue, processes: `qlrf run` as a process: stop signals, leftovers of a killed run, a hand-edited dagster.yaml."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from pipelines.instance import MANAGED_MARKER, prepare_dagster_home, write_instance_yaml
from qlrf.settings import Settings
from qlrf.warehouse import Warehouse

pytestmark = pytest.mark.fault

DAY = "2026-11-20"


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    return {**env, "QLRF_HOME": str(home), "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["launch", "in_process"])
def test_sigterm_stops_after_the_partition_in_flight_and_leaves_no_run_started(tmp_path, mode):
    home = tmp_path / "home"
    stale = home / "warehouse" / "inventory" / f"date={DAY}" / "platform=aws" / ".killed.tmp"
    stale.parent.mkdir(parents=True)
    stale.write_text("half a partition")
    old = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    os.utime(stale, (old, old))

    proc = subprocess.Popen([sys.executable, "-m", "qlrf.cli", "run", "--date", DAY], env={**_env(home), "QLRF_RUN_MODE": mode},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = []
    for line in proc.stdout:
        out.append(line)
        if "ok    golden images" in line:
            proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=300) == 130, "".join(out)
    text = "".join(out)
    assert "removed 1 temporary file(s)" in text and not stale.exists()
    assert "STOP  stopped by SIGTERM: not started:" in text and "fleet report" in text.split("not started:")[1]
    if mode == "in_process":  # one partition at a time: the platforms after the one in flight never start
        assert "vsphere" in text.split("not started:")[1]
    assert "the partitions written are whole" in text
    assert not (home / "warehouse" / "fleet_report" / f"date={DAY}").exists()

    from dagster import DagsterInstance, DagsterRunStatus

    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        statuses = {run.status for run in instance.get_runs()}
    assert statuses and statuses <= {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE}


def test_only_stale_temporaries_are_swept(tmp_path):
    wh = Warehouse(str(tmp_path))
    part = tmp_path / "vm_drift" / f"date={DAY}" / "platform=gcp"
    part.mkdir(parents=True)
    for name in (".killed.tmp", ".writing.tmp", "part.parquet"):
        (part / name).write_text("x")
    base = (part / ".writing.tmp").stat().st_mtime
    for name, age in ((".killed.tmp", timedelta(hours=1)), ("part.parquet", timedelta(days=1))):
        os.utime(part / name, ((base - age.total_seconds()),) * 2)
    # "now" as the warehouse's filesystem reports the newest file's time (under libfaketime, pyarrow's
    # stat() is shifted and Python's is not), so the ages above hold whatever the clock says.
    now = wh.fs.get_file_info(str(part / ".writing.tmp")).mtime + timedelta(minutes=1)
    assert wh.sweep_temporaries(now) == [str(part / ".killed.tmp")]
    assert sorted(p.name for p in part.iterdir()) == [".writing.tmp", "part.parquet"]


def test_a_hand_edited_dagster_yaml_is_kept_and_said(tmp_path, monkeypatch):
    monkeypatch.setenv("QLRF_HOME", str(tmp_path))
    settings = Settings.from_env()
    said: list[str] = []
    home = prepare_dagster_home(settings, warn=said.append)
    ours = (home / "dagster.yaml").read_text()
    assert ours.startswith(MANAGED_MARKER) and said == []

    mine = "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: QueuedRunCoordinator\n"
    (home / "dagster.yaml").write_text(mine)
    prepare_dagster_home(settings, warn=said.append)
    assert (home / "dagster.yaml").read_text() == mine
    assert len(said) == 1 and "edited by hand" in said[0] and "kept as it is" in said[0]


def test_an_unmarked_file_identical_to_ours_is_adopted(tmp_path):
    config = {"telemetry": {"enabled": False}}
    path = tmp_path / "dagster.yaml"
    path.write_text(yaml.safe_dump(config))
    assert write_instance_yaml(path, config) and path.read_text().startswith(MANAGED_MARKER)
