"""The Dagster instance: SQLite under DAGSTER_HOME by default, dagster-postgres with QLRF_POSTGRES_URL.

The run launcher is instance configuration (where a launched run goes), so it is written here from
QLRF_RUN_LAUNCHER: ``default`` leaves Dagster's DefaultRunLauncher (a local process per run);
``docker`` and ``k8s`` name dagster-docker's / dagster-k8s's launcher, which must be installed where
the instance runs, with their own settings from the YAML file in QLRF_RUN_LAUNCHER_CONFIG (e.g.
``job_image``, ``instance_config_map`` for k8s; ``image``, ``network`` for docker). The executor,
which decides how the steps *inside* a run execute, is code location configuration
(pipelines/executors.py, QLRF_EXECUTOR).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from qlrf.settings import Settings


def psycopg2_url(url: str) -> str:
    """dagster-postgres on SQLAlchemy 2.1 needs the psycopg2 driver named explicitly (platform notes)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


# QLRF_RUN_LAUNCHER value -> the run_launcher section's module and class (qlrf.settings.RUN_LAUNCHERS).
RUN_LAUNCHERS = {
    "docker": {"module": "dagster_docker", "class": "DockerRunLauncher"},
    "k8s": {"module": "dagster_k8s", "class": "K8sRunLauncher"},
}


def run_launcher_config(settings: Settings) -> dict | None:
    """The dagster.yaml ``run_launcher`` section, or None for Dagster's default launcher."""
    if settings.run_launcher == "default":
        return None
    section: dict = dict(RUN_LAUNCHERS[settings.run_launcher])
    if settings.run_launcher_config:
        section["config"] = yaml.safe_load(settings.run_launcher_config.read_text()) or {}
        if settings.run_launcher == "k8s":  # a typo fails here, naming the key, not when a run launches
            from pipelines.k8s import validate_launcher_config

            validate_launcher_config(section["config"])
    return section


def instance_config(settings: Settings) -> dict:
    config: dict = {"telemetry": {"enabled": False}, "run_monitoring": {"enabled": True}}
    if settings.postgres_url:
        # The URL is read from the environment by Dagster itself, so the secret never lands on disk.
        config["storage"] = {"postgres": {"postgres_url": {"env": "QLRF_DAGSTER_PG_URL"}}}
    launcher = run_launcher_config(settings)
    if launcher:
        config["run_launcher"] = launcher
    return config


# The first line of every dagster.yaml this module writes. A file without it was written by a person:
# it is kept as it is, never overwritten (a deployment's hand-tuned instance must survive `qlrf run`).
MANAGED_MARKER = "# managed by qlrf (pipelines/instance.py): set QLRF_* instead, or delete this line to keep your own edits"


def write_instance_yaml(path: Path, config: dict) -> bool:
    """Write `config` to `path` unless a person owns the file; True when written.

    Atomic (temporary file + rename), so a kill mid-write never leaves a truncated instance config.
    """
    if path.exists():
        text = path.read_text()
        # A file without the marker is a person's, unless it is exactly what we would write (older releases).
        if not text.startswith(MANAGED_MARKER) and yaml.safe_load(text) != config:
            return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(MANAGED_MARKER + "\n" + yaml.safe_dump(config, sort_keys=False))
    tmp.replace(path)
    return True


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def prepare_dagster_home(settings: Settings | None = None, warn: Callable[[str], None] = _stderr) -> Path:
    """Create DAGSTER_HOME with a dagster.yaml matching the settings; export what Dagster reads."""
    settings = settings or Settings.from_env()
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not write_instance_yaml(target, instance_config(settings)):
        warn(
            f"warning: {target} was edited by hand (no '# managed by qlrf' first line): kept as it is; "
            "the QLRF_* instance settings were not applied to it"
        )
    os.environ["DAGSTER_HOME"] = str(home)
    if settings.postgres_url:
        os.environ["QLRF_DAGSTER_PG_URL"] = psycopg2_url(settings.postgres_url)
    return home
