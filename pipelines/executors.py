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

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

# QLRF_EXECUTOR value -> (module, attribute) of an executor that lives in an optional package.
OPTIONAL_EXECUTORS = {
    "celery": ("dagster_celery", "celery_executor"),
    "k8s": ("dagster_k8s", "k8s_job_executor"),
    "docker": ("dagster_docker", "docker_executor"),
}


def executor_for(name: str, env: Mapping[str, str] | None = None) -> ExecutorDefinition:
    """The executor definition for a QLRF_EXECUTOR value (see qlrf.settings.EXECUTORS).

    celery comes configured from `env` (pipelines/celery_profile.py: broker, backend, default queue,
    late acknowledgement), the same block its workers start from, so a run needs no executor config."""
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
    executor = getattr(module, attribute)
    if name == "celery":
        from pipelines.celery_profile import executor_config

        return executor.configured(executor_config(env), name="celery")
    return executor
