"""Progress for long commands, drawn with `rich` on stderr, and only when stderr is a terminal.

A command that is silent for a minute looks hung; one that prints a progress bar into a CI log or
into `--json` output corrupts what a machine reads. So the bar goes to stderr and only to a
terminal: piped, redirected or in CI it is a no-op, and stdout stays exactly what it was.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO


class Progress:
    """`done` of `total` steps and what is in flight; draws nothing unless `enabled`.

    ``enabled`` defaults to whether `stream` (stderr) is a terminal. Use as a context manager.
    """

    def __init__(self, total: int | None, description: str, *, stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total = total
        self.description = description
        self.done = 0
        self.current = ""
        self._bar = None
        self._task = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress

            console = Console(file=self.stream, force_terminal=True)
            self._bar = RichProgress(
                SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("{task.fields[current]}"), console=console, transient=False,
                # Lines printed to stdout are drawn above the bar only when stdout is that terminal too:
                # piped, they must stay on stdout, untouched.
                redirect_stdout=sys.stdout.isatty(), redirect_stderr=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, current="")
        return self

    def doing(self, what: str) -> None:
        """Name the step in flight (the asset, the partition, the file)."""
        self.current = what
        if self._bar is not None:
            self._bar.update(self._task, current=what, refresh=True)  # shown now, not at the next tick

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        if self._bar is not None:
            self._bar.update(self._task, advance=steps, refresh=True)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.update(self._task, current="")
            self._bar.stop()
            self._bar = None
