"""Drive the dashboard for real: a headless Streamlit server and Debian's Chromium through Selenium.

Shared by the browser test and bench/bench_pages.py. The server runs in its own process group so one
signal stops it all; chromium and chromedriver come from scripts/system-deps.sh (Debian packages).
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


def start_streamlit(env: dict[str, str], port: int, log: Path, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """`extra` adds command-line options (the sign-in test passes ``--secrets.files`` with its own secrets.toml)."""
    command = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboards" / "app.py"), "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", *extra]
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


RUNNING = '[data-testid="stStatusWidget"]'  # shown while the script runs
EXCEPTION = '[data-testid="stException"]'


def open_and_settle(driver, url: str, timeout: float = 60, quiet: float = 0.6) -> float:
    """Load `url`, wait for a title and for the app to stop running for `quiet` seconds; seconds it took."""
    from selenium.webdriver.common.by import By

    started = time.monotonic()
    driver.get(url)
    deadline = started + timeout
    idle_since = None
    while time.monotonic() < deadline:
        titled = driver.find_elements(By.CSS_SELECTOR, "h1")
        running = driver.find_elements(By.CSS_SELECTOR, RUNNING)
        if titled and not running:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= quiet:
                return idle_since - started
        else:
            idle_since = None
        time.sleep(0.1)
    raise TimeoutError(f"{url}: still running after {timeout} s")


def exceptions(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, EXCEPTION)]


def screenshot(driver, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def install_deps() -> None:
    """Debian's chromium and chromedriver, installed only when missing (CI starts from a fresh machine)."""
    subprocess.run([str(ROOT / "scripts" / "system-deps.sh"), "chromium:chromium", "chromedriver:chromium-driver"], check=True)
