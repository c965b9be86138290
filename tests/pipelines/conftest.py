"""Whole days of `qlrf run` as a process, shared by the launch and run-mode tests: each (mode, day) runs once."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

DAY = "2026-11-20"
# A day that fails part-way: vSphere read from an export directory that does not exist. Golden images
# still land, vsphere fails, the fleet report fails for want of any platform.
FAILING = {"QLRF_SOURCE_VSPHERE": "files:/nonexistent/qlrf-exports"}


@dataclass(frozen=True)
class DayRun:
    proc: subprocess.CompletedProcess
    home: Path


def qlrf_env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    return {**env, "QLRF_HOME": str(home), **extra}


@pytest.fixture(scope="session")
def day_run(tmp_path_factory):
    """day_run(mode, failing=False) -> DayRun of `qlrf run --date DAY --platform vsphere` in that mode."""
    done: dict[tuple[str, bool], DayRun] = {}

    def run(mode: str, failing: bool = False) -> DayRun:
        if (mode, failing) not in done:
            home = tmp_path_factory.mktemp(f"{mode}-{'failing' if failing else 'ok'}") / "home"
            flag = "--in-process" if mode == "in_process" else "--launch"
            proc = subprocess.run([sys.executable, "-m", "qlrf.cli", "run", "--date", DAY, "--platform", "vsphere", flag],
                                  env=qlrf_env(home, **(FAILING if failing else {})), capture_output=True, text=True,
                                  timeout=900 if mode == "launch" else 300)
            done[(mode, failing)] = DayRun(proc, home)
        return done[(mode, failing)]

    return run
