"""deploy/celery/dagster.yaml loads through Dagster's own instance schema, against the machine's PostgreSQL."""

from __future__ import annotations

import shutil

import pytest

from pipelines.celery_profile import DEPLOY_DIR


@pytest.mark.postgres
def test_the_instance_file_loads_through_dagster_with_postgres_and_the_per_cloud_limit(pg_url, tmp_path, monkeypatch):
    from dagster import DagsterInstance

    from pipelines.instance import psycopg2_url

    shutil.copyfile(DEPLOY_DIR / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("QLRF_DAGSTER_PG_URL", psycopg2_url(pg_url))
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "dagster/partition/platform", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
        assert instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure  # a remediation run never acts twice
    assert "postgres_url:\n      env: QLRF_DAGSTER_PG_URL" in (DEPLOY_DIR / "dagster.yaml").read_text()
