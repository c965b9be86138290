"""Open a Control Tower page in a real browser and wait until Streamlit has finished running it."""

from __future__ import annotations

import time
from pathlib import Path

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
