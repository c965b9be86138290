"""With QLRF_POSTGRES_URL set, runs and materialisations land in the machine's real PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg2
import pytest


@pytest.mark.postgres
def test_run_records_runs_and_materializations_in_postgres(pg_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    env.update(QLRF_HOME=str(tmp_path), QLRF_POSTGRES_URL=pg_url)
    proc = subprocess.run(  # in process: the storage is under test here, not the code-location origin
        [sys.executable, "-m", "pipelines.run", "--date", "2026-11-24", "--platform", "vsphere", "--in-process"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Dagster instance: postgres" in proc.stdout
    config = (tmp_path / "dagster" / "dagster.yaml").read_text()
    assert "QLRF_DAGSTER_PG_URL" in config and "127.0.0.1" not in config  # the URL stays in the environment
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(*) FILTER (WHERE status = 'SUCCESS') FROM runs")
        assert cur.fetchone() == (3, 3)  # golden images, vsphere, fleet report
        cur.execute("SELECT DISTINCT asset_key FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'")
        keys = {row[0] for row in cur.fetchall()}
        assert {'["inventory"]', '["vm_drift"]', '["golden_images"]', '["fleet_report"]'} <= keys
        cur.execute("SELECT partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' AND asset_key = %s", ('["inventory"]',))
        assert cur.fetchall() == [("2026-11-24|vsphere",)]
