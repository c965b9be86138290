"""The Celery profile: the executor's settings, the workers' settings, and how a worker is started.

One function (:func:`executor_config`) builds the ``celery_executor`` block both sides use: the code
location configures its executor with it (pipelines/executors.py) and ``make serve PROFILE=celery``
writes it to the YAML file the workers start from (``dagster-celery worker start -y``). The two
sides must agree on broker, backend and queues, or steps wait for a worker that never comes.

Why these Celery settings:

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a step's message is acknowledged when the
  step has finished, not when a worker took it. A worker killed mid-step (OOM, node drained) drops
  its connection and RabbitMQ hands the message to another worker, which runs the step again. Every
  partition is written by replacing it whole (write a temporary file, then rename), so the step that
  runs twice still leaves one partition. Without it the run would wait forever for a result the dead
  worker will never send (tests/integration/test_celery_faults.py).
* ``worker_prefetch_multiplier`` 1: a worker holds one step beyond the one it runs, so a busy
  worker does not sit on steps an idle one could take.
* the broker connection gives up after a bounded time (``broker_connection_timeout``,
  ``broker_transport_options.max_retries``), so a broker that is gone fails the run instead of
  hanging it: the partitions already written are whole, the rest are not written.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from assets.routing import API_QUEUE, DEFAULT_QUEUE
from qlrf.envparse import environ, positive_int, text

BROKER_VARIABLE = "QLRF_CELERY_BROKER_URL"
BACKEND_VARIABLE = "QLRF_CELERY_BACKEND_URL"
QUEUE_VARIABLE = "QLRF_CELERY_QUEUE"
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"  # RabbitMQ's default account: no secret
DEFAULT_BACKEND = "rpc://"  # results travel back over the broker to the run that asked (no extra store)


def _url(env: Mapping[str, str], name: str, default: str) -> str | dict:
    """``{"env": name}`` when the variable is set, so a URL holding a password stays in the environment
    (Dagster resolves it when the run starts); the default, which holds none, otherwise."""
    return {"env": name} if env.get(name) else default


def executor_config(env: Mapping[str, str] | None = None, *, resolve: bool = False) -> dict:
    """The ``celery_executor`` config block for an environment (see the module docstring).

    `resolve` puts the URLs themselves in the block instead of ``{"env": ...}`` references: the
    workers' YAML needs them (dagster-celery writes its worker config from it).
    """
    env = environ(env)
    broker, backend = _url(env, BROKER_VARIABLE, DEFAULT_BROKER), _url(env, BACKEND_VARIABLE, DEFAULT_BACKEND)
    if resolve:
        broker = env[BROKER_VARIABLE] if isinstance(broker, dict) else broker
        backend = env[BACKEND_VARIABLE] if isinstance(backend, dict) else backend
    return {
        "broker": broker,
        "backend": backend,
        "config_source": {
            "task_default_queue": text(env, QUEUE_VARIABLE, DEFAULT_QUEUE),
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "broker_connection_timeout": 5,
            "broker_connection_retry_on_startup": True,
            "broker_transport_options": {"max_retries": 3, "interval_start": 0, "interval_step": 0.5,
                                         "interval_max": 1},
        },
    }


def overlay(block: Mapping, override: Mapping | None) -> dict:
    """`block` with a QLRF_EXECUTOR_CONFIG file's keys on top; ``config_source`` merged key by key, so
    a file that sets one Celery setting keeps the others (late acknowledgement above all)."""
    merged = {**block, **(override or {})}
    if override and "config_source" in override:
        merged["config_source"] = {**block.get("config_source", {}), **(override["config_source"] or {})}
    return merged


def _file_config(env: Mapping[str, str]) -> dict | None:
    from pipelines.executors import executor_config as file_config

    return file_config(env)


def worker_queues(env: Mapping[str, str] | None = None) -> list[str]:
    """Every queue a step of the daily graph can be sent to (the default one and assets/routing.py's)."""
    env = environ(env)
    source = overlay(executor_config(env), _file_config(env))["config_source"]
    return list(dict.fromkeys([source.get("task_default_queue") or DEFAULT_QUEUE, API_QUEUE]))


def write_worker_config(path: Path, env: Mapping[str, str] | None = None) -> Path:
    """The YAML `dagster-celery worker start -y` reads: the executor block under ``execution.config``.

    It holds the broker URL itself (dagster-celery needs it there), so it is written owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    env = environ(env)
    block = overlay(executor_config(env, resolve=True), _file_config(env))  # what executor_for configures
    tmp.write_text(yaml.safe_dump({"execution": {"config": block}}, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def worker_argv(config_yaml: Path, name: str, queues: list[str], concurrency: int | None = None) -> list[str]:
    """`dagster-celery worker start` for one worker; it runs `celery worker` as its child, so callers start
    it in its own process group and stop the group."""
    argv = [str(Path(sys.executable).parent / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
            "-y", str(config_yaml), "-n", name, "-l", "WARNING", "-i", "pipelines.celery_worker"]
    # One -q with the queues comma-separated: dagster-celery passes each -q on as its own `celery -Q`, and
    # celery 5 keeps only the last -Q (a worker given `-q qlrf -q qlrf-api` served qlrf-api alone).
    argv += ["-q", ",".join(queues)]
    # Extra arguments go to `celery worker` itself.
    return argv + ["--", f"--concurrency={concurrency or os.cpu_count() or 1}", "--without-gossip",
                   "--without-mingle", "--without-heartbeat"]


def worker_concurrency(env: Mapping[str, str] | None = None) -> int:
    """QLRF_CELERY_CONCURRENCY: steps one worker runs at once (default: one per core)."""
    return positive_int(text(environ(env), "QLRF_CELERY_CONCURRENCY", str(os.cpu_count() or 1)),
                        "QLRF_CELERY_CONCURRENCY")


DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "celery"


def prepare_celery_home(home: Path) -> Path:
    """DAGSTER_HOME for the Celery profile: deploy/celery/dagster.yaml copied in (Postgres storage from
    QLRF_DAGSTER_PG_URL, queued runs with the per-cloud limits). Returns the directory."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEPLOY_DIR / "dagster.yaml", home / "dagster.yaml")
    return home


def job_named(name: str):
    """The code location's job `name`: what `build_reconstructable_job("pipelines.celery_profile",
    "job_named", (name,))` points at, so a run started from Python (bench, tests) can be rebuilt by a
    Celery worker in its own process, as a run launched from the UI is from workspace.yaml.

    Built for the process's current QLRF_* settings (cached per settings, not once per process like
    ``pipelines.definitions.defs``), so a test process can run the same job in process and on Celery."""
    settings = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("QLRF_")))
    return _definitions(settings).resolve_job_def(name)


@functools.lru_cache(maxsize=4)
def _definitions(settings: tuple[tuple[str, str], ...]):
    from pipelines.definitions import build_definitions

    return build_definitions(dict(os.environ))  # the key is the QLRF_* part; secrets bind by name from the rest


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_partitions(pairs: list[tuple[str, str]], out=print) -> bool:
    """Run each (job, partition key) in turn on the current instance with the code location's executor,
    this process orchestrating and the Celery workers running the steps; print one JSON line per run.

    What `python -m pipelines.celery_profile run job=key ...` does: the day (or a part of it) through the
    workers without the UI or the daemon, for the bench and the tests. True when every run succeeded."""
    import json
    import time

    from dagster import DagsterInstance, build_reconstructable_job, execute_job

    ok = True
    with DagsterInstance.get() as instance:
        for job_name, key in pairs:
            started = time.perf_counter()
            recon = build_reconstructable_job("pipelines.celery_profile", "job_named", (job_name,))
            with execute_job(recon, instance=instance, run_config=QUIET, tags={"dagster/partition": key},
                             raise_on_error=False) as result:
                run_id, success = result.run_id, result.success
            ok = ok and success
            out(json.dumps({"job": job_name, "partition": key, "run_id": run_id, "success": success,
                            "seconds": round(time.perf_counter() - started, 2)}), flush=True)
            if not success:
                break
    return ok


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] != "run" or not all("=" in a for a in args[1:]):
        print("usage: python -m pipelines.celery_profile run JOB=PARTITION_KEY [JOB=PARTITION_KEY ...]",
              file=sys.stderr)
        return 2
    return 0 if run_partitions([tuple(a.split("=", 1)) for a in args[1:]]) else 1


if __name__ == "__main__":
    sys.exit(main())
