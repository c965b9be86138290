"""Progress on stderr with rich, only on a terminal: nothing in pipes, CI logs or --json output."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from datetime import date

import pytest

from qlrf import cli
from qlrf.progress import Progress

TODAY = date(2026, 11, 30)


def test_no_terminal_no_progress():
    stream = io.StringIO()  # not a tty, like a pipe or a CI log
    with Progress(3, "day", stream=stream) as progress:
        progress.doing("aws")
        progress.advance()
    assert not progress.enabled and stream.getvalue() == "" and progress.done == 1


def test_on_a_terminal_it_shows_done_of_total_and_the_step_in_flight():
    stream = io.StringIO()
    with Progress(3, "2026-11-20 partitions", stream=stream, enabled=True) as progress:
        progress.doing("golden images (golden_images_job 2026-11-20)")
        progress.advance()
        progress.doing("aws (platform_daily_job 2026-11-20|aws)")
        progress.advance()
    out = stream.getvalue()
    assert "2026-11-20 partitions" in out and "2/3" in out and "aws (platform_daily_job" in out


def test_estate_generate_piped_prints_only_its_json(tmp_path, capsys):
    assert cli.main(["estate", "generate", "--out", str(tmp_path / "e"), "--date", "2026-11-20", "--scale", "0.01"],
                    today=TODAY) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["counts"]["aws"] == 52


@pytest.mark.slow
def test_estate_generate_on_a_terminal_shows_progress_on_stderr_only(tmp_path):
    primary, secondary = pty.openpty()
    env = {**os.environ, "COLUMNS": "120"}
    proc = subprocess.run(
        [sys.executable, "-m", "qlrf.cli", "estate", "generate", "--out", str(tmp_path / "e"), "--date", "2026-11-20",
         "--scale", "0.01"], stdout=subprocess.PIPE, stderr=secondary, env=env, timeout=120)
    os.close(secondary)
    err = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        err += chunk
    os.close(primary)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["counts"]["vsphere"] == 14  # stdout: the JSON alone
    text = err.decode(errors="replace")
    assert "sample estate" in text and "5/5" in text


def test_stdout_piped_stays_on_stdout_while_the_bar_draws(capsys):
    """stderr a terminal, stdout a pipe (`qlrf run | tee`): the report must not move into the bar's stream."""
    stream = io.StringIO()
    with Progress(1, "day", stream=stream, enabled=True) as progress:
        print("  ok    aws")
        progress.advance()
    assert capsys.readouterr().out == "  ok    aws\n" and "ok    aws" not in stream.getvalue()
