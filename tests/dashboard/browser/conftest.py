"""Fixtures for the real-browser test: a Streamlit server over the materialised day, a Chromium per test."""

from __future__ import annotations

import pytest

from qlrf.envparse import environ
from tests.dashboard.browser.harness import (
    ROOT,
    chromium,
    free_port,
    install_deps,
    start_streamlit,
    stop,
    wait_healthy,
)


@pytest.fixture(scope="session")
def browser_deps():
    install_deps()


@pytest.fixture()
def served_day(browser_deps, materialized_day, tmp_path):
    root, day = materialized_day
    env = {**environ(), "QLRF_WAREHOUSE": str(root), "QLRF_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    # a trusted local admin: every page, Settings included, is in the navigation (issue 14: Settings is admin-only)
    env.update(QLRF_DASHBOARD_LOCAL_USER="browser-test@example.com", QLRF_DASHBOARD_LOCAL_ROLES="admin@*")
    port = free_port()
    no_secrets = tmp_path / "secrets.toml"  # a developer's own secrets.toml (sign-in on) must not apply
    no_secrets.write_text("")
    server = start_streamlit(env, port, tmp_path / "streamlit.log", ("--secrets.files", str(no_secrets)))
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
