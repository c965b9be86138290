"""The Kubernetes path, checked without a cluster: the run launcher's settings against the launcher's
own config schema (``K8sRunLauncher.config_type()``), through Dagster's run-config validation.

The deployment files live in deploy/: ``deploy/k8s/run-launcher.yaml`` (K8sRunLauncher),
``deploy/k8s/executor.yaml`` (k8s_job_executor, applied with QLRF_EXECUTOR_CONFIG and checked by
pipelines/executors.py), ``deploy/helm/values.yaml`` (Dagster's official chart). dagster-k8s is
imported only when a function here is called.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import yaml
from dagster import DagsterInvalidConfigError, job, op, validate_run_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RUN_LAUNCHER_FILE = DEPLOY / "k8s" / "run-launcher.yaml"
EXECUTOR_FILE = DEPLOY / "k8s" / "executor.yaml"
HELM_VALUES_FILE = DEPLOY / "helm" / "values.yaml"


def load_yaml(path: Path) -> dict:
    """A deployment file as a mapping; anything else is an error naming the file."""
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


def validate_launcher_config(config: Mapping, module: str = "dagster_k8s", cls: str = "K8sRunLauncher") -> dict:
    """`config` checked against the launcher class's own ``config_type()`` by Dagster's run-config
    validation (the schema carried as the config of a one-op job: Dagster has no public validator
    for a bare schema). A misspelt or mistyped key raises ValueError naming the key."""
    launcher = getattr(importlib.import_module(module), cls)

    @op(config_schema=launcher.config_type())
    def launcher_settings() -> None:
        """Nothing: the op exists only to carry the launcher's schema."""

    @job(name="run_launcher_config_check")
    def carrier() -> None:
        launcher_settings()

    try:
        validate_run_config(carrier, {"ops": {"launcher_settings": {"config": dict(config)}}})
    except DagsterInvalidConfigError as exc:
        problems = "; ".join(error.message for error in exc.errors)
        raise ValueError(f"{cls} settings: {problems}") from None
    return dict(config)
