"""/healthz, /readyz and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from qlrf.api.app import create_app
from qlrf.api.identity import Authenticator
from qlrf.settings import Settings
from qlrf.warehouse import Warehouse
from tests.api.support import ALICE, client_for

DAY = "2026-11-20"
ROOT = Path(__file__).resolve().parents[2]


def _with_a_day(root) -> None:
    Warehouse(str(root)).write("fleet_report", pa.table({"platform": ["aws"], "vms": [12]}), DAY)


def test_healthz_needs_no_identity(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_ready_when_database_day_and_policy_are(store, tmp_path):
    _with_a_day(tmp_path / "warehouse")
    response = client_for(store, tmp_path).get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True and body["not_ready"] == []
    assert {c["name"]: c["detail"] for c in body["checks"]} == {
        "task_database": "reachable (sqlite)",
        "warehouse": f"newest materialised day {DAY}",
        "gate_policy": "loaded (embedded)",
    }


def test_not_ready_names_the_missing_day(store, tmp_path):
    response = client_for(store, tmp_path).get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False and body["not_ready"] == ["warehouse"]
    warehouse = next(c for c in body["checks"] if c["name"] == "warehouse")
    assert warehouse["detail"] == "no materialised day (fleet_report has no partition): run `make run` first"


def test_not_ready_names_a_policy_that_does_not_load(store, tmp_path, monkeypatch):
    _with_a_day(tmp_path / "warehouse")
    broken = tmp_path / "policy"
    broken.mkdir()
    (broken / "gate.rego").write_text("package qlrf.gate\nimport rego.v1\ndecision := {", encoding="utf-8")
    monkeypatch.setenv("QLRF_POLICY_DIR", str(broken))
    body = client_for(store, tmp_path).get("/readyz").json()
    assert body["not_ready"] == ["gate_policy"]
    gate = next(c for c in body["checks"] if c["name"] == "gate_policy")
    assert gate["detail"].startswith("does not load: ") and "gate.rego" in gate["detail"]


def test_the_policy_is_reloaded_only_when_it_changes(tmp_path, monkeypatch):
    from qlrf.api import readiness

    loads = []
    real = readiness.gate_policy
    monkeypatch.setattr(readiness, "gate_policy", lambda env=None: loads.append(1) or real(env))
    folder = tmp_path / "policy"
    folder.mkdir()
    for source in (ROOT / "policy").glob("*.rego"):
        (folder / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    check = readiness.GatePolicyCheck({"QLRF_POLICY_DIR": str(folder)})
    assert [check().ok, check().ok] == [True, True] and len(loads) == 1
    (folder / "gate.rego").write_text("package qlrf.gate\nimport rego.v1\ndecision := {", encoding="utf-8")
    assert check().ok is False and check().detail.startswith("does not load: ") and len(loads) == 2


def test_an_unreachable_task_database_is_503_everywhere_it_matters(tmp_path, monkeypatch):
    # Nothing listens on port 1: the store cannot open. The app still starts and says why.
    monkeypatch.setenv("QLRF_POSTGRES_URL", "postgresql://qlrf:s3cret-pw@127.0.0.1:1/qlrf")
    _with_a_day(tmp_path / "warehouse")
    settings = Settings.from_env({"QLRF_HOME": str(tmp_path / "home"), "QLRF_WAREHOUSE": str(tmp_path / "warehouse")})
    from fastapi.testclient import TestClient

    from qlrf.api.identity import TokenTable
    from tests.api.support import write_tokens

    app = create_app(settings, identity=Authenticator(TokenTable.load(write_tokens(tmp_path / "t.yaml"))))
    client = TestClient(app, raise_server_exceptions=False)
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["not_ready"] == ["task_database"]
    detail = ready.json()["checks"][0]["detail"]
    assert detail.startswith("unreachable: StoreUnavailable: task database unreachable (OperationalError)")
    tasks = client.get("/api/v1/tasks", headers=ALICE)
    assert tasks.status_code == 503 and tasks.json()["error"] == "task_database_unavailable"
    assert "s3cret-pw" not in ready.text + tasks.text


def test_openapi_documents_every_route_and_the_bearer_scheme(client):
    doc = client.get("/openapi.json").json()
    assert set(doc["paths"]) == {"/healthz", "/readyz", "/api/v1/ai/execute", "/api/v1/tasks", "/api/v1/tasks/{task_id}",
                                 "/api/v1/tasks/{task_id}/approve", "/api/v1/tasks/{task_id}/reject"}
    approve = doc["paths"]["/api/v1/tasks/{task_id}/approve"]["post"]
    assert {"200", "401", "403", "404", "409", "422"} <= set(approve["responses"])
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    review = doc["components"]["schemas"]["ReviewRequest"]
    assert set(review["properties"]) == {"plan_hash", "reason"} and review["additionalProperties"] is False
    assert client.get("/docs").status_code == 200
