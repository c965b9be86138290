"""The discovery fan-out across processes: what Celery and k8s_job_executor need (a reconstructable
graph, batches and results that cross process boundaries through the IO manager), checked with
Dagster's multiprocess executor through the `dagster` CLI, one step per vCenter x datacenter."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from qlrf.inventory.contract import inventory_table
from qlrf.tenancy import model as tenancy
from qlrf.warehouse import Warehouse
from resources.estate import EstateResource

ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-11-20"


@pytest.mark.slow
def test_scope_steps_run_in_their_own_processes_and_write_the_serial_result(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster"), "QLRF_HOME": str(tmp_path),
           "QLRF_EXECUTOR": "multiprocess", "QLRF_SCOPES_PER_STEP": "1"}
    for name in [k for k in env if k.startswith(("QLRF_SOURCE_", "QLRF_WAREHOUSE", "QLRF_ESTATE_DIR"))]:
        env.pop(name)
    (tmp_path / "dagster").mkdir()
    dagster = str(Path(sys.executable).with_name("dagster"))
    proc = subprocess.run(
        [dagster, "asset", "materialize", "-m", "pipelines.definitions", "-a", "defs",
         "--select", "discovered_inventory,inventory,vm_snapshots,cloud_images,scaling_groups",
         "--partition", f"{DAY}|vsphere"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "RUN_SUCCESS" in log, log[-3000:]
    # "<pid> - <step> - STEP_SUCCESS": each discover_scope step in a process of its own
    pids = set(re.findall(r" - (\d+) - discovered_inventory\.discover_scope\[\w+\] - STEP_SUCCESS", log))
    assert len(pids) >= 3, log[-3000:]

    written = Warehouse(str(tmp_path / "warehouse")).read("inventory", DAY, "vsphere")
    at = written["discovered_at"][0].as_py()
    serial = EstateResource(estate_dir=str(tmp_path / "estate")).inventory(date.fromisoformat(DAY), "vsphere", at)
    tenancy.current().stamp(serial.vms)  # the inventory asset stamps org/project (contract 1.1) as it writes
    assert written.equals(inventory_table(serial.vms).select(written.schema.names).cast(written.schema))
