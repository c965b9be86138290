"""Side-by-side runs: both sides of a comparison as fresh processes, interleaved, medians and ratios.

A figure measured alone on a shared 2-core machine moves with whatever else runs; two figures
measured minutes apart are not comparable. So every bench that quotes a ratio runs its sides in
one loop, A B A B A B, each as a new process (start-up and imports are part of what a user waits
for), and quotes the median of each side, its min-max and the ratio of the medians, with the load
average next to them. The peak RSS of each child comes from `wait4` (the child's own high-water
mark, not the parent's).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a command run as a fresh process each round.

    `stdin`/`stdout` may name files (e.g. a reference that writes to /dev/null, or reads one file);
    `check(stdout_text)` may raise to refuse a run whose output is wrong, so a fast wrong answer
    never counts as a fast answer."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: str | Path | None = None
    stdout_path: str | None = None
    check: Callable[[str], None] | None = None


@dataclass
class Sample:
    seconds: float
    peak_mib: float
    stdout: str


@dataclass
class Summary:
    name: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        return [s.seconds for s in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def low(self) -> float:
        return min(self.seconds)

    @property
    def high(self) -> float:
        return max(self.seconds)

    @property
    def peak_mib(self) -> float:
        """Median peak RSS over the rounds (MiB)."""
        return statistics.median(s.peak_mib for s in self.samples)

    def line(self, width: int = 28) -> str:
        return (f"{self.name:<{width}} median {self.median:7.2f} s  (min-max {self.low:.2f}-{self.high:.2f} s, "
                f"n={len(self.samples)})  peak RSS {self.peak_mib:,.0f} MiB")


def ratio(ours: Summary, reference: Summary) -> float:
    """Median over median: how many times the reference's wall time ours takes (lower is better)."""
    return ours.median / reference.median


def load_line() -> str:
    """The load average and core count, printed with every figure (the machine is shared)."""
    one, five, fifteen = os.getloadavg()
    return (f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


GNU_TIME = "/usr/bin/time"


def run_once(side: Side) -> Sample:
    """Start `side` as a new process, wait for it, and return wall time, peak RSS and stdout.

    The peak comes from GNU time (Debian `time`) wrapped around the command: a child forked straight
    from this process would report this process's own peak (Linux carries the pre-exec high-water
    mark into ru_maxrss), and the bench parent holds a million-row table. Without GNU time the
    child's VmHWM is sampled every 10 ms instead (a lower bound)."""
    env = dict(os.environ if side.env is None else side.env)
    with tempfile.TemporaryFile() as captured, tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        wrapped = os.access(GNU_TIME, os.X_OK)
        argv = [GNU_TIME, "-f", "%M", "-o", rss.name, *side.argv] if wrapped else list(side.argv)
        out = open(side.stdout_path, "wb") if side.stdout_path else captured  # noqa: SIM115 (closed below)
        try:
            started = time.perf_counter()
            proc = subprocess.Popen(argv, env=env, cwd=side.cwd or ROOT, stdout=out, stderr=subprocess.PIPE)
            stderr_chunks: list[bytes] = []
            sampled = 0
            if wrapped:
                stderr_chunks.append(proc.stderr.read() if proc.stderr else b"")
            else:
                while proc.poll() is None:
                    sampled = max(sampled, _vm_hwm_kib(proc.pid))
                    time.sleep(0.01)
                stderr_chunks.append(proc.stderr.read() if proc.stderr else b"")
            proc.wait()
            seconds = time.perf_counter() - started
        finally:
            if side.stdout_path:
                out.close()
        captured.seek(0)
        text = captured.read().decode(errors="replace")
        peak_kib = _gnu_time_kib(rss.read()) if wrapped else sampled
    stderr = b"".join(stderr_chunks)
    if proc.returncode != 0:
        raise RuntimeError(f"{side.name} exited {proc.returncode}:\n{stderr.decode(errors='replace')[-3000:]}")
    if side.check is not None:
        side.check(text)
    return Sample(seconds=seconds, peak_mib=peak_kib / 1024, stdout=text)


def _gnu_time_kib(report: str) -> int:
    """The last line of GNU time's `-f %M` report (earlier lines may say the command exited non-zero)."""
    lines = [line for line in report.strip().splitlines() if line.strip().isdigit()]
    return int(lines[-1]) if lines else 0


def _vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmHWM")), 0)
    except (OSError, ValueError):
        return 0


def interleave(sides: Sequence[Side], rounds: int = 3, runner: Callable[[Side], Sample] = run_once,
               echo: Callable[[str], None] | None = print) -> dict[str, Summary]:
    """Run every side once per round, in order (A B A B ...), and collect the samples per side."""
    if rounds < 1:
        raise ValueError(f"rounds: expected at least 1, got {rounds}")
    summaries = {side.name: Summary(side.name) for side in sides}
    for round_no in range(1, rounds + 1):
        parts = []
        for side in sides:
            sample = runner(side)
            summaries[side.name].samples.append(sample)
            parts.append(f"{side.name} {sample.seconds:.2f} s / {sample.peak_mib:,.0f} MiB")
        if echo:
            echo(f"  round {round_no}: " + " | ".join(parts))
    return summaries


def goal(text: str, met: bool) -> str:
    return f"{text}: {'met' if met else 'NOT met'}"
