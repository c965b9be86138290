"""`make serve PROFILE=celery` starts the webserver, the daemon and two Celery workers on the profile's
instance (PostgreSQL, queued runs); `make stop` leaves nothing behind. Private vhost, database, ports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fakes.base import free_port
from tests.integration.celery_stack import CeleryStack

ROOT = Path(__file__).resolve().parents[2]
LOCATION_QUERY = '{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }'


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _graphql(port: str, query: str) -> dict | None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=3) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


@pytest.mark.slow
@pytest.mark.postgres
def test_serve_celery_profile_starts_webserver_daemon_and_two_workers(tmp_path):
    from celery import Celery

    stack = CeleryStack(tmp_path / "stack").open()  # only for its vhost and database: serve starts the workers
    home = tmp_path / "home"
    env = {k: v for k, v in stack.env().items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    env.update(QLRF_HOME=str(home), QLRF_POSTGRES_URL=stack.pg_url, QLRF_CELERY_CONCURRENCY="1",
               QLRF_CELERY_BROKER_URL=stack.env()["QLRF_CELERY_BROKER_URL"], QLRF_DAGSTER_PORT=str(free_port()),
               QLRF_DASHBOARD_PORT=str(free_port()), QLRF_API_PORT=str(free_port()))
    serve = [sys.executable, str(ROOT / "scripts" / "serve.py")]
    pids: dict[str, int] = {}
    app = Celery(broker=env["QLRF_CELERY_BROKER_URL"])
    try:
        subprocess.run([*serve, "start", "--profile", "celery"], env=env, check=True, timeout=60, cwd=ROOT,
                       capture_output=True)
        pids = {p.stem: int(p.read_text()) for p in (home / "run").glob("*.pid")}
        assert {"dagster-webserver", "dagster-daemon", "celery-worker-1", "celery-worker-2"} <= set(pids)
        assert "dagster" not in pids  # not `dagster dev`
        deadline, loaded, pongs = time.monotonic() + 120, None, set()
        while time.monotonic() < deadline and not (loaded == "LOADED" and pongs >= {"qlrf-1", "qlrf-2"}):
            answer = _graphql(env["QLRF_DAGSTER_PORT"], LOCATION_QUERY)
            entries = ((answer or {}).get("data") or {}).get("workspaceOrError", {}).get("locationEntries") or []
            loaded = entries[0]["loadStatus"] if entries else None
            pongs = {name.split("@")[0] for reply in (app.control.ping(timeout=1.0) or []) for name in reply}
        logs = {name: (home / "run" / f"{name}.log").read_text(errors="replace")[-800:] for name in pids}
        assert loaded == "LOADED", f"code location not loaded: {logs.get('dagster-webserver')}"
        assert pongs >= {"qlrf-1", "qlrf-2"}, f"workers answering: {pongs}; {logs}"
        # The webserver and daemon use the profile's instance: deploy/celery/dagster.yaml in its own DAGSTER_HOME.
        instance_file = (home / "dagster-celery" / "dagster.yaml").read_text()
        assert "QueuedRunCoordinator" in instance_file and "env: QLRF_DAGSTER_PG_URL" in instance_file
    finally:
        app.close()
        stop = subprocess.run([*serve, "stop"], env=env, capture_output=True, text=True, timeout=90, cwd=ROOT)
        stack.close()
    assert stop.returncode == 0, stop.stderr
    assert not any(_group_alive(pgid) for pgid in pids.values())
