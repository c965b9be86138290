"""Start and stop the Dagster UI + daemon, the Streamlit app and the HTTP API, each in its own process group.

``start --profile celery`` (``make serve PROFILE=celery``) is the production shape instead of
``dagster dev``: dagster-webserver and dagster-daemon over deploy/celery/dagster.yaml (Postgres
storage, queued runs with per-cloud limits) and QLRF_CELERY_WORKERS (2) Celery workers serving every
queue of assets/routing.py; the code location runs with QLRF_EXECUTOR=celery (README: Celery profile).

`dagster dev` started from a shell with `&` inherits an ignored SIGINT and leaves children behind
when only its parent is killed (platform notes), so each service gets default signal handling and
its own session, and `stop` signals the whole group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.celery_profile import (  # noqa: E402
    prepare_celery_home,
    worker_argv,
    worker_concurrency,
    worker_queues,
    write_worker_config,
)
from pipelines.instance import prepare_dagster_home, psycopg2_url  # noqa: E402
from qlrf.api.config import ApiSettings  # noqa: E402
from qlrf.envparse import environ, positive_int, text  # noqa: E402
from qlrf.settings import Settings  # noqa: E402

BIN = Path(sys.executable).parent


def _port(name: str, default: str) -> str:
    return text(environ(), name, default)


PROFILES = ("default", "celery")


def _services(settings: Settings, profile: str = "default") -> dict[str, list[str]]:
    services = {
        "dagster": [str(BIN / "dagster"), "dev", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1",
                    "-p", _port("QLRF_DAGSTER_PORT", "3000")],
        "streamlit": [str(BIN / "streamlit"), "run", str(ROOT / "dashboards" / "app.py"), "--server.headless", "true",
                      "--server.address", "127.0.0.1", "--server.port", _port("QLRF_DASHBOARD_PORT", "8501")],
        "api": [sys.executable, "-m", "qlrf.api"],  # host and port from QLRF_API_HOST / QLRF_API_PORT
        # The event relay: outbox -> NATS JetStream (QLRF_NATS_URL); while the broker is down events wait.
        # Passes every 0.25 s: an indexed SELECT on the outbox, and a change reaches the broker well inside 1 s.
        "events-relay": [str(BIN / "qlrf"), "events", "relay", "--interval", "0.25"],
    }
    if profile == "celery":
        del services["dagster"]  # `dagster dev` is for a laptop: the webserver and the daemon run on their own
        workspace = str(ROOT / "deploy" / "celery" / "workspace.yaml")
        services = {
            "dagster-webserver": [str(BIN / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1",
                                  "-p", _port("QLRF_DAGSTER_PORT", "3000")],
            "dagster-daemon": [str(BIN / "dagster-daemon"), "run", "-w", workspace],
            **{f"celery-worker-{i}": worker_argv(_run_dir(settings) / "celery.yaml", f"qlrf-{i}", worker_queues(),
                                                 worker_concurrency())
               for i in range(1, _workers() + 1)},
            **services,
        }
    return services


def _workers() -> int:
    return positive_int(text(environ(), "QLRF_CELERY_WORKERS", "2"), "QLRF_CELERY_WORKERS")


def _prepare_celery(settings: Settings) -> None:
    """The Celery profile's environment for every service it starts (see the module docstring)."""
    if not settings.postgres_url:
        raise ValueError("PROFILE=celery needs QLRF_POSTGRES_URL (runs and events in PostgreSQL: the workers "
                         "and the webserver share them), e.g. postgresql://postgres@127.0.0.1:5432/qlrf")
    home = prepare_celery_home(settings.home / "dagster-celery")
    os.environ.update(DAGSTER_HOME=str(home), QLRF_EXECUTOR="celery",
                      QLRF_DAGSTER_PG_URL=psycopg2_url(settings.postgres_url))
    # dagster-celery runs `celery` from PATH: the one next to this interpreter.
    os.environ["PATH"] = os.pathsep.join([str(BIN), os.environ.get("PATH", "")])
    write_worker_config(_run_dir(settings) / "celery.yaml")
    _create_instance_storage()


def _create_instance_storage() -> None:
    """Create (or migrate) the profile's PostgreSQL storage once, before the webserver, the daemon and the
    workers start together: each creates missing tables on first use, and two doing it at once on an
    empty database race (a worker died on 'type "instigators" already exists')."""
    done = subprocess.run([str(BIN / "dagster"), "instance", "migrate"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    if done.returncode != 0:
        raise ValueError("dagster instance migrate failed on the profile's PostgreSQL storage: "
                         + (done.stderr.strip().splitlines() or ["(no output)"])[-1])


def _reset_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _run_dir(settings: Settings) -> Path:
    path = settings.home / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def start(profile: str = "default") -> int:
    try:
        settings = Settings.from_env()
        api = ApiSettings.from_env()  # a bad QLRF_API_PORT stops here, naming the variable, before anything starts
        if profile == "celery":
            _prepare_celery(settings)
        else:
            prepare_dagster_home(settings)
        services = _services(settings, profile)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_dir = _run_dir(settings)
    for name, argv in services.items():
        pid_file = run_dir / f"{name}.pid"
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            print(f"{name} already running (pid {pid_file.read_text().strip()})")
            continue
        with open(run_dir / f"{name}.log", "ab") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, preexec_fn=_reset_signals)
        pid_file.write_text(str(proc.pid))
        print(f"started {name} (pid {proc.pid}), log {run_dir / (name + '.log')}")
    print(f"Dagster UI: http://127.0.0.1:{_port('QLRF_DAGSTER_PORT', '3000')}")
    print(f"Dashboard:  http://127.0.0.1:{_port('QLRF_DASHBOARD_PORT', '8501')}")
    print(f"HTTP API:   http://{api.host}:{api.port}/docs")
    print("Stop with: make stop")
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop() -> int:
    settings = Settings.from_env()
    for pid_file in sorted(_run_dir(settings).glob("*.pid")):
        pid = int(pid_file.read_text())
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pid_file.unlink()
            continue
        deadline = time.time() + 20
        while time.time() < deadline and _group_alive(pid):
            time.sleep(0.2)
        if _group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        pid_file.unlink()
        print(f"stopped {pid_file.stem} (process group {pid})")
    return 0


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("start", "stop"):
        print("usage: serve.py start [--profile default|celery] | stop", file=sys.stderr)
        return 2
    if argv[0] == "stop":
        return stop()
    profile = argv[2] if argv[1:2] == ["--profile"] and len(argv) > 2 else "default"
    if profile not in PROFILES or (len(argv) > 1 and argv[1:2] != ["--profile"]):
        print(f"error: unknown profile {profile!r}: expected one of {', '.join(PROFILES)}", file=sys.stderr)
        return 2
    return start(profile)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
