"""`make serve` starts the Dagster UI + daemon, Streamlit and the HTTP API; `make stop` leaves no process behind.

Started the way a shell script would (`&` in a non-interactive shell ignores SIGINT in the child), to
prove the services still stop on SIGTERM to their process groups.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fakes.base import free_port

ROOT = Path(__file__).resolve().parents[2]


def _wait(url: str, timeout: float = 120) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode()
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_serve_then_stop_leaves_nothing_running(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    env.update(QLRF_HOME=str(tmp_path), QLRF_DAGSTER_PORT=str(free_port()), QLRF_DASHBOARD_PORT=str(free_port()),
               QLRF_API_PORT=str(free_port()))
    serve = [sys.executable, str(ROOT / "scripts" / "serve.py")]
    subprocess.run(["bash", "-c", f"{' '.join(serve)} start & wait"], env=env, check=True, timeout=60, cwd=ROOT)
    pids = {p.stem: int(p.read_text()) for p in (tmp_path / "run").glob("*.pid")}
    try:
        assert set(pids) == {"dagster", "streamlit", "api", "events-relay"}
        assert _wait(f"http://127.0.0.1:{env['QLRF_API_PORT']}/healthz") == '{"status":"ok"}'
        assert _wait(f"http://127.0.0.1:{env['QLRF_DASHBOARD_PORT']}/_stcore/health") == "ok"
        assert "dagster_webserver_version" in _wait(f"http://127.0.0.1:{env['QLRF_DAGSTER_PORT']}/server_info")
    finally:
        stop = subprocess.run([*serve, "stop"], env=env, capture_output=True, text=True, timeout=90, cwd=ROOT)
    assert stop.returncode == 0, stop.stderr
    assert not any(_group_alive(pgid) for pgid in pids.values())
    assert not list((tmp_path / "run").glob("*.pid"))
