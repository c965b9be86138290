"""The FastAPI application: routers over qlrf/, the error mapping, and the local-mode header.

Everything the app talks to is injected, so tests run it against a real task store in a temp
database and an in-test ``ask``, and production against the environment's:

* ``settings``: :class:`qlrf.settings.Settings` (warehouse for readiness, the orchestrator's settings);
* ``ask_factory``: returns the ``ask`` callable per request (default: :class:`OrchestratorAsk`,
  which imports ``qlrf.ai.orchestrator`` lazily and answers 503 when it cannot);
* ``task_store``: a :class:`TaskStore`, or None to open the environment's (with its audit log) on
  first use, so the app starts while the database is down and ``/readyz`` says so;
* ``identity``: an :class:`Authenticator`, or None to build one from ``QLRF_API_*``;
* ``grants``: the role table (:class:`~qlrf.tenancy.store.GrantStore`), or None for the one in the task
  store's database: what the caller may do is read from it per request (issue 14);
* ``clock``: the time the orchestrator's day comes from (default: the system clock, read per call).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI, Request, Response

from qlrf.api import errors, routes_ai, routes_health, routes_tasks
from qlrf.api.asking import AskFactory, OrchestratorAsk
from qlrf.api.config import ApiSettings
from qlrf.api.errors import StoreUnavailable
from qlrf.api.identity import LOCAL_MODE_HEADER, LOCAL_MODE_VALUE, Authenticator
from qlrf.api.limits import BodyLimit
from qlrf.api.readiness import GatePolicyCheck
from qlrf.remediation.approvals import TaskStore
from qlrf.settings import Settings
from qlrf.tenancy.store import GrantStore

API_VERSION = "1"


def system_clock() -> datetime:
    return datetime.now(UTC)


class GrantsOpener:
    """The role table (qlrf.tenancy.store) in the task store's database, audited in its audit log;
    opened with the task store on first use. Grants are read per request, so a revoke counts at once."""

    def __init__(self, open_store: StoreOpener, grants: GrantStore | None = None):
        self._open_store = open_store
        self._grants = grants
        self._lock = threading.Lock()

    def __call__(self) -> GrantStore:
        with self._lock:
            if self._grants is None:
                from qlrf.remediation.audit import AuditLog

                store = self._open_store()
                audit = store.audit if store.audit is not None else AuditLog(engine=store.engine)
                self._grants = GrantStore(engine=store.engine, audit=audit)
            return self._grants


class StoreOpener:
    """The environment's task store, opened on first use and kept; a failure is retried next time."""

    def __init__(self, store: TaskStore | None = None):
        self._store = store
        self._lock = threading.Lock()

    def __call__(self) -> TaskStore:
        with self._lock:
            if self._store is None:
                from qlrf.events.wiring import evented_store
                from qlrf.remediation.audit import AuditLog

                try:
                    self._store = evented_store(audit=AuditLog())  # decisions emit task.* events (outbox)
                except Exception as exc:  # the driver's text may name the host; never the URL or password
                    raise StoreUnavailable(f"task database unreachable ({type(exc).__name__}): see GET /readyz") from None
            return self._store


def create_app(
    settings: Settings | None = None,
    *,
    ask_factory: AskFactory | None = None,
    task_store: TaskStore | None = None,
    identity: Authenticator | None = None,
    grants: GrantStore | None = None,
    clock: Callable[[], datetime] = system_clock,
) -> FastAPI:
    settings = settings or Settings.from_env()
    authenticator = identity or Authenticator.from_settings(ApiSettings.from_env())
    app = FastAPI(
        title="Resilience Fabric API",
        version=API_VERSION,
        description="Ask the AI orchestrator, and review approval tasks bound to their plan hash. "
        "Identity comes from a bearer token configured on the server (or a trusted local user), never from a field.",
    )
    app.state.settings = settings
    app.state.authenticator = authenticator
    app.state.open_store = StoreOpener(task_store)
    app.state.open_grants = GrantsOpener(app.state.open_store, grants)
    app.state.ask_factory = ask_factory or OrchestratorAsk(settings, clock)
    app.state.gate_check = GatePolicyCheck()
    errors.install(app)
    app.add_middleware(BodyLimit)
    for module in (routes_health, routes_ai, routes_tasks):
        app.include_router(module.router)

    if authenticator.local_mode:

        @app.middleware("http")
        async def say_local_mode(request: Request, call_next: Callable) -> Response:
            response = await call_next(request)
            response.headers[LOCAL_MODE_HEADER] = LOCAL_MODE_VALUE
            return response

    return app


__all__ = ["create_app", "system_clock"]
