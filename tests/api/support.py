"""What the API tests share: tokens, a client over a real task store, and tasks proposed through it."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import yaml
from fastapi.testclient import TestClient

from qlrf.api.app import create_app
from qlrf.api.asking import Ask, AskFactory
from qlrf.api.identity import Authenticator, TokenTable, token_digest
from qlrf.remediation.approvals import TaskStore
from qlrf.settings import Settings
from qlrf.tenancy.roles import Grant

T0 = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
# token -> identity as configured (normalised by the server: "Alice@Example.com" signs in as alice@example.com)
TOKENS = {
    "tok-alice-3f9c1e7a5b": "Alice@Example.com",
    "tok-bob-8d2e4c6a1f": "bob",
    "tok-carol-5a7b9c1d3e": "carol",
}


def write_tokens(path: Path, tokens: dict[str, str] = TOKENS, mode: int = 0o600) -> Path:
    path.write_text(yaml.safe_dump({token_digest(t): who for t, who in tokens.items()}), encoding="utf-8")
    os.chmod(path, mode)
    return path


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


ALICE, BOB, CAROL = (bearer(t) for t in TOKENS)


def client_for(
    store: TaskStore,
    tmp_path: Path,
    *,
    ask: Ask | None = None,
    ask_factory: AskFactory | None = None,
    local_user: str | None = None,
    tokens: bool = True,
    warehouse: Path | None = None,
    clock: Callable[[], datetime] = lambda: T0,
    grants: bool = True,
) -> TestClient:
    settings = Settings.from_env({"QLRF_HOME": str(tmp_path / "home"),
                                  "QLRF_WAREHOUSE": str(warehouse or tmp_path / "warehouse")})
    table = TokenTable.load(write_tokens(tmp_path / "tokens.yaml")) if tokens else None
    if grants:  # every configured identity an approver everywhere: these tests are about the API, not roles
        from qlrf.tenancy.store import GrantStore
        from tests.tenancy.support import TEST_ADMIN

        role_table = GrantStore(engine=store.engine, audit=store.audit)
        for who in {*(TOKENS.values() if tokens else ()), *([local_user] if local_user else [])}:
            if Grant("approver", "*") not in role_table.grants_for(who):
                role_table.grant(who, Grant("approver", "*"), by=TEST_ADMIN)
    factory = ask_factory or ((lambda: ask) if ask is not None else None)
    app = create_app(settings, ask_factory=factory, task_store=store,
                     identity=Authenticator(table, local_user), clock=clock)
    return TestClient(app, raise_server_exceptions=False)
