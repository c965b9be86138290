"""The executor a run uses, chosen by QLRF_EXECUTOR when the definitions are built (never at import).

in_process (default) runs every step in the run's own process: ~3 s for the daily platform run
here against ~12 s with a subprocess per step (platform notes), and the steps share nothing that
needs isolating. multiprocess isolates steps (a crash in a connector's SDK kills one step, not the
run). celery, k8s and docker hand steps to workers and need their package installed
(dagster-celery, dagster-k8s, dagster-docker, pinned with dagster); they are imported only when chosen.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import yaml
from dagster import (
    DagsterInvalidConfigError,
    ExecutorDefinition,
    in_process_executor,
    job,
    multiprocess_executor,
    op,
    validate_run_config,
)

from qlrf.envparse import environ

# QLRF_EXECUTOR value -> (module, attribute) of an executor that lives in an optional package.
OPTIONAL_EXECUTORS = {
    "celery": ("dagster_celery", "celery_executor"),
    "k8s": ("dagster_k8s", "k8s_job_executor"),
    "docker": ("dagster_docker", "docker_executor"),
}


def executor_config(env: Mapping[str, str] | None = None) -> dict | None:
    """QLRF_EXECUTOR_CONFIG: a YAML file with the executor's own settings (e.g. deploy/k8s/executor.yaml
    for k8s_job_executor: max_concurrent, step resources), read when the definitions are built."""
    path = environ(env).get("QLRF_EXECUTOR_CONFIG")
    if not path:
        return None
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"QLRF_EXECUTOR_CONFIG={path}: cannot read the executor settings: {exc}") from None
    if not isinstance(config, dict):
        raise ValueError(f"QLRF_EXECUTOR_CONFIG={path}: expected a mapping of the executor's settings")
    return config


def executor_for(name: str, config: Mapping | None = None, env: Mapping[str, str] | None = None) -> ExecutorDefinition:
    """The executor definition for a QLRF_EXECUTOR value (see qlrf.settings.EXECUTORS), with `config`
    (QLRF_EXECUTOR_CONFIG) applied through Dagster's own schema when given: a typo fails the load.

    celery comes configured from `env` (pipelines/celery_profile.py: broker, backend, default queue,
    late acknowledgement), the same block its workers start from, so a run needs no executor config;
    a QLRF_EXECUTOR_CONFIG file overrides single keys of it (config_source key by key)."""
    executor = _named(name)
    if name == "celery":
        from pipelines.celery_profile import executor_config as celery_config
        from pipelines.celery_profile import overlay

        base = celery_config(env)  # env references resolve when the run starts, not when definitions load
        # The workers start from the same overlay (celery_profile.write_worker_config), so both sides agree.
        merged = overlay(base, validate_executor_config(executor, config)) if config else base
        return executor.configured(merged, name="celery")
    if config:
        validated = validate_executor_config(executor, config)
        return executor.configured(validated, name=f"{name}_configured")
    return executor


def validate_executor_config(executor: ExecutorDefinition, config: Mapping) -> dict:
    """`config` checked by Dagster's run-config validation against the executor's own schema (a
    one-op job that uses it), so a misspelt key fails when the definitions load, not mid-run.
    Returns the config as given (Dagster fills its defaults when the run starts)."""

    @op
    def noop() -> None:
        """Nothing: the job exists only to carry the executor's schema."""

    @job(executor_def=executor, name="executor_config_check")
    def carrier() -> None:
        noop()

    try:
        validate_run_config(carrier, {"execution": {"config": dict(config)}})
    except DagsterInvalidConfigError as exc:
        problems = "; ".join(error.message for error in exc.errors)
        raise ValueError(f"{executor.name} executor settings: {problems}") from None
    return dict(config)


def _named(name: str) -> ExecutorDefinition:
    if name == "in_process":
        return in_process_executor
    if name == "multiprocess":
        return multiprocess_executor
    if name not in OPTIONAL_EXECUTORS:
        raise ValueError(f"QLRF_EXECUTOR={name!r}: expected in_process, multiprocess, {', '.join(OPTIONAL_EXECUTORS)}")
    module_name, attribute = OPTIONAL_EXECUTORS[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        package = module_name.replace("_", "-")
        raise ValueError(f"QLRF_EXECUTOR={name}: install {package} (same release line as dagster) to use it") from None
    return getattr(module, attribute)
