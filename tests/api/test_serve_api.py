"""`python -m qlrf.api` as a real server: it listens where configured, answers with httpx, and a bad
configuration stops it before it listens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.support import TOKENS, bearer, write_tokens
from tests.fakes.base import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    env.update(QLRF_HOME=str(tmp_path / "home"), QLRF_AUDIT_DIR=str(tmp_path / "audit"), **extra)
    return env


def _wait(url: str, proc: subprocess.Popen, timeout: float = 60) -> httpx.Response:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    raise TimeoutError(url)


def test_python_m_qlrf_api_serves_health_and_tasks(tmp_path):
    port = free_port()
    tokens = write_tokens(tmp_path / "tokens.yaml")
    env = _env(tmp_path, QLRF_API_PORT=str(port), QLRF_API_TOKENS_FILE=str(tokens))
    log = tmp_path / "api.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "qlrf.api"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        health = _wait(f"http://127.0.0.1:{port}/healthz", proc)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        token = next(iter(TOKENS))
        tasks = httpx.get(f"http://127.0.0.1:{port}/api/v1/tasks", headers=bearer(token), timeout=10)
        assert tasks.status_code == 200 and tasks.json() == {"tasks": [], "total": 0, "limit": 50, "offset": 0,
                                                             "next_offset": None}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/tasks", timeout=10).status_code == 401
        assert "server" not in tasks.headers  # no server banner
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    text = log.read_text()
    assert f"http://127.0.0.1:{port}" in text and "GET /api/v1/tasks" in text
    assert token not in text and "Bearer" not in text


def test_a_bad_configuration_stops_the_server_before_it_listens(tmp_path):
    for extra, says in (
        ({"QLRF_API_HOST": "0.0.0.0", "QLRF_API_TRUSTED_LOCAL_USER": "ops"},
         "qlrf api: QLRF_API_TRUSTED_LOCAL_USER is only honoured when the API binds a loopback address"),
        ({"QLRF_API_PORT": "http"}, "qlrf api: QLRF_API_PORT='http': expected an integer >= 1"),
        ({"QLRF_API_TOKENS_FILE": str(write_tokens(tmp_path / "open.yaml", mode=0o644))}, "mode 0644 lets group or others"),
    ):
        done = subprocess.run([sys.executable, "-m", "qlrf.api"], cwd=ROOT, env=_env(tmp_path, **extra),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        assert says in done.stderr and "Traceback" not in done.stderr
