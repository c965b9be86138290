"""The Dagster instance: SQLite under DAGSTER_HOME by default, dagster-postgres with QLRF_POSTGRES_URL."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from qlrf.settings import Settings


def psycopg2_url(url: str) -> str:
    """dagster-postgres on SQLAlchemy 2.1 needs the psycopg2 driver named explicitly (platform notes)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def instance_config(settings: Settings) -> dict:
    config: dict = {"telemetry": {"enabled": False}, "run_monitoring": {"enabled": True}}
    if settings.postgres_url:
        # The URL is read from the environment by Dagster itself, so the secret never lands on disk.
        config["storage"] = {"postgres": {"postgres_url": {"env": "QLRF_DAGSTER_PG_URL"}}}
    return config


def prepare_dagster_home(settings: Settings | None = None) -> Path:
    """Create DAGSTER_HOME with a dagster.yaml matching the settings; export what Dagster reads."""
    settings = settings or Settings.from_env()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(settings), sort_keys=False))
    os.environ["DAGSTER_HOME"] = str(home)
    if settings.postgres_url:
        os.environ["QLRF_DAGSTER_PG_URL"] = psycopg2_url(settings.postgres_url)
    return home
