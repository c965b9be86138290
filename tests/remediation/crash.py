"""Kill an execution mid-wave and recover it in a fresh process: shared by the kill tests and
bench/bench_kill_resume.py.

The execution is the real thing: ``python -m qlrf.cli plan execute TASK_ID`` in a child process
(its own session), SIGKILLed from here as soon as the execution journal (read from this process,
in the same task database) shows a cloud call of wave ``wave``; the recovery is the same command
again, in another fresh process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from qlrf.remediation.journal import ExecutionJournal


def cli_env(**extra: str) -> dict[str, str]:
    """This environment for a CLI child (no Dagster run context), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update(extra)
    return env


def qlrf(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qlrf.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@dataclass
class Killed:
    """What the journal showed when the child was killed."""

    steps: int
    unfinished: bool
    wave_steps: int  # journal rows of the wave the kill landed in
    output: str


def execute_and_kill(task_id: str, env: dict[str, str], *, wave: int = 1, timeout: float = 120) -> Killed:
    """Start the execution, SIGKILL it once the journal shows a cloud call of ``wave``."""
    journal = ExecutionJournal()
    proc = subprocess.Popen([sys.executable, "-m", "qlrf.cli", "plan", "execute", task_id], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            entries = journal.entries(task_id)
            if any(e.step == "chunk" and e.wave == wave for e in entries):
                os.kill(proc.pid, signal.SIGKILL)
                break
            if proc.poll() is not None:
                raise AssertionError(f"the execution ended before wave {wave} (exit {proc.returncode}): "
                                     f"{proc.stdout.read() if proc.stdout else ''}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no journal step of wave {wave} after {timeout}s")
            time.sleep(0.005)
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate(timeout=30)[0] or ""
    entries = journal.entries(task_id)
    return Killed(len(entries), journal.unfinished(task_id) is not None,
                  sum(1 for e in entries if e.wave == wave), output)


__all__ = ["Killed", "cli_env", "execute_and_kill", "qlrf"]
