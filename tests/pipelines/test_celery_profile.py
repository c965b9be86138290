"""The Celery profile's configuration, without starting anything: executor and worker agree, the instance
file loads through Dagster's own schema, serve refuses the profile without PostgreSQL."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from assets.routing import API_POOL, API_QUEUE, QUEUE_TAG
from pipelines.celery_profile import (
    executor_config,
    worker_argv,
    worker_queues,
    write_worker_config,
)
from pipelines.executors import executor_for

ROOT = Path(__file__).resolve().parents[2]


def _serve():
    spec = importlib.util.spec_from_file_location("serve_script", ROOT / "scripts" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_broker_url_with_a_password_stays_an_env_reference_in_the_executor():
    env = {"QLRF_CELERY_BROKER_URL": "amqp://svc:s3cret@mq.internal:5672/qlrf", "QLRF_CELERY_QUEUE": "prod"}
    config = executor_config(env)
    assert config["broker"] == {"env": "QLRF_CELERY_BROKER_URL"} and "s3cret" not in repr(config)
    assert config["config_source"]["task_default_queue"] == "prod"
    assert config["config_source"]["task_acks_late"] and config["config_source"]["task_reject_on_worker_lost"]
    assert executor_config({})["broker"] == "amqp://guest:guest@127.0.0.1:5672//"
    # The executor accepts the block through its own schema (configured at definitions build time).
    assert executor_for("celery", env=env).name == "celery"


def test_the_worker_file_holds_what_the_executor_resolves_and_only_its_owner_reads_it(tmp_path):
    env = {"QLRF_CELERY_BROKER_URL": "amqp://svc:s3cret@mq.internal:5672/qlrf"}
    path = write_worker_config(tmp_path / "celery.yaml", env)
    block = yaml.safe_load(path.read_text())["execution"]["config"]
    assert block["broker"] == env["QLRF_CELERY_BROKER_URL"]
    assert block["config_source"] == executor_config(env)["config_source"]
    assert path.stat().st_mode & 0o077 == 0


def test_a_worker_serves_every_queue_with_one_flag():
    argv = worker_argv(Path("/x/celery.yaml"), "qlrf-1", worker_queues({}), 3)
    # dagster-celery turns each -q into a celery -Q and celery keeps only the last one: one flag, comma-joined.
    assert argv.count("-q") == 1 and argv[argv.index("-q") + 1] == f"qlrf,{API_QUEUE}"
    assert "--concurrency=3" in argv


def test_discovery_is_routed_and_pooled():
    from assets.discovery import discover_scope, merge_scopes, plan_scopes
    from pipelines.definitions import build_definitions

    # The step per batch of scopes is the one that calls the clouds: API queue and pool; the rest default.
    assert discover_scope.tags[QUEUE_TAG] == API_QUEUE and discover_scope.pool == API_POOL
    assert QUEUE_TAG not in plan_scopes.tags and QUEUE_TAG not in merge_scopes.tags
    job = build_definitions({"QLRF_EXECUTOR": "celery"}).resolve_job_def("platform_daily_job")
    assert QUEUE_TAG not in job.graph.node_named("inventory_assets").definition.tags  # writes only
    assert job.executor_def.name == "celery"


def test_serve_refuses_the_celery_profile_without_postgres(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QLRF_HOME", str(tmp_path))
    monkeypatch.delenv("QLRF_POSTGRES_URL", raising=False)
    assert _serve().main(["start", "--profile", "celery"]) == 2
    assert "PROFILE=celery needs QLRF_POSTGRES_URL" in capsys.readouterr().err
    assert not list(tmp_path.glob("run/*.pid"))  # nothing started
    assert _serve().main(["start", "--profile", "kubernetes"]) == 2


def test_the_celery_profile_runs_webserver_daemon_and_two_workers(tmp_path, monkeypatch):
    serve = _serve()
    from qlrf.settings import Settings

    monkeypatch.setenv("QLRF_HOME", str(tmp_path))
    services = serve._services(Settings.from_env(), "celery")
    assert {"dagster-webserver", "dagster-daemon", "celery-worker-1", "celery-worker-2"} <= set(services)
    assert "dagster" not in services  # no `dagster dev` in production
    assert services["dagster-daemon"][-1].endswith("deploy/celery/workspace.yaml")


def test_the_per_cloud_run_limit_keys_on_a_tag_every_platform_run_carries():
    from assets.partitions import daily_platform

    limits = yaml.safe_load((ROOT / "deploy" / "celery" / "dagster.yaml").read_text())["concurrency"]["runs"]
    (limit,) = limits["tag_concurrency_limits"]
    assert daily_platform.get_tags_for_partition_key("2026-11-20|aws")[limit["key"]] == "aws"
    assert limit["value"] == {"applyLimitPerUniqueValue": True} and limit["limit"] == 1


def test_the_run_command_refuses_what_it_cannot_run(capsys):
    from pipelines.celery_profile import main

    assert main(["run"]) == 2 and main(["run", "platform_daily_job"]) == 2 and main(["launch", "a=b"]) == 2
    assert "usage: python -m pipelines.celery_profile run JOB=PARTITION_KEY" in capsys.readouterr().err


def test_an_executor_config_file_reaches_the_workers_too_and_keeps_late_ack(tmp_path):
    """QLRF_EXECUTOR_CONFIG overrides keys of the Celery block on both sides: a worker started from the
    file serves the queue the executor sends to, and late acknowledgement survives a partial config_source."""
    from pipelines.celery_profile import overlay

    config = tmp_path / "executor.yaml"
    config.write_text("config_source:\n  task_default_queue: estate-a\n")
    env = {"QLRF_EXECUTOR_CONFIG": str(config)}
    block = yaml.safe_load(write_worker_config(tmp_path / "celery.yaml", env).read_text())["execution"]["config"]
    assert block["config_source"]["task_default_queue"] == "estate-a" and block["config_source"]["task_acks_late"]
    assert worker_queues(env) == ["estate-a", API_QUEUE]
    assert overlay(executor_config(env), {"config_source": {"task_default_queue": "estate-a"}}) == {
        **executor_config(env), "config_source": {**executor_config(env)["config_source"], "task_default_queue": "estate-a"}}
    assert executor_for("celery", {"config_source": {"task_default_queue": "estate-a"}}, env).name == "celery"
