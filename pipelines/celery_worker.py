"""Imported by every Celery worker of the profile (`dagster-celery worker start -i pipelines.celery_worker`).

A worker's first step would otherwise pay for importing the code location (Dagster, DuckDB, pandas,
every asset module: seconds) while the run waits on it. Importing it here does that once in the
worker's parent, before its pool processes fork, and each pool process builds the definitions as it
starts (``worker_process_init``), so the first step a worker takes runs as fast as its hundredth.
Nothing is read from the environment at import: the definitions are built in the handler.
"""

from __future__ import annotations

import logging

from celery.signals import worker_process_init

import pipelines.definitions  # noqa: F401  (the imports are the point: done before the pool forks)


@worker_process_init.connect
def load_code_location(**_kwargs) -> None:
    """Build the code location's definitions in a pool process as it starts."""
    from pipelines.celery_profile import job_named
    from pipelines.definitions import defs

    try:
        defs.get_all_job_defs()
        job_named("platform_daily_job")  # what `python -m pipelines.celery_profile run` points the workers at
    except Exception as exc:  # a warm-up only: the step that needs them fails with the full error, in the UI
        logging.getLogger(__name__).warning("code location not preloaded: %s", exc)
