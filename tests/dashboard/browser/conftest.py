"""A real Streamlit server over a materialised day and a real headless Chromium driving it (Selenium).

Chromium and chromedriver come from Debian, installed by the project's own scripts/system-deps.sh
(CI runs on a fresh machine). The server runs in its own process group so one signal stops it all.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# Flags from NOTES-platform.md: no sandbox (root in CI), nothing phoning home, a fresh profile per run.
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                  "--disable-dev-shm-usage")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_streamlit(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboards" / "app.py"), "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_healthy(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit on port {port} not healthy after {timeout} s")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


def chromium(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="session")
def browser_deps():
    subprocess.run([str(ROOT / "scripts" / "system-deps.sh"), "chromium:chromium", "chromedriver:chromium-driver"], check=True)


@pytest.fixture()
def served_day(browser_deps, materialized_day, tmp_path):
    root, day = materialized_day
    env = {**os.environ, "QLRF_WAREHOUSE": str(root), "QLRF_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    env.pop("QLRF_DASHBOARD_LOCAL_USER", None)
    port = free_port()
    server = start_streamlit(env, port, tmp_path / "streamlit.log")
    try:
        wait_healthy(port, server)
        yield f"http://127.0.0.1:{port}", day
    finally:
        stop(server)


@pytest.fixture()
def driver(browser_deps, tmp_path):
    browser = chromium(tmp_path / "chromium-profile")
    try:
        yield browser
    finally:
        browser.quit()
