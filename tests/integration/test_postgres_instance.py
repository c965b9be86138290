"""With QLRF_POSTGRES_URL set, runs and materialisations land in the machine's real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg2
import pytest

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture()
def database():
    name = f"qlrf_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(ADMIN)
    except psycopg2.OperationalError as exc:  # pragma: no cover - the machine runs PostgreSQL 15
        pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.postgres
def test_run_records_runs_and_materializations_in_postgres(database, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    env.update(QLRF_HOME=str(tmp_path), QLRF_POSTGRES_URL=database)
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.run", "--date", "2026-11-24", "--platform", "vsphere"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Dagster instance: postgres" in proc.stdout
    config = (tmp_path / "dagster" / "dagster.yaml").read_text()
    assert "QLRF_DAGSTER_PG_URL" in config and "127.0.0.1" not in config  # the URL stays in the environment
    with psycopg2.connect(database) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(*) FILTER (WHERE status = 'SUCCESS') FROM runs")
        assert cur.fetchone() == (3, 3)  # golden images, vsphere, fleet report
        cur.execute("SELECT DISTINCT asset_key FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        keys = {row[0] for row in cur.fetchall()}
        assert {'["inventory"]', '["vm_drift"]', '["golden_images"]', '["fleet_report"]'} <= keys
        cur.execute("SELECT partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s", ('["inventory"]',))
        assert cur.fetchall() == [("2026-11-24|vsphere",)]
