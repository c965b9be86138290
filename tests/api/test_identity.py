"""Identity is configured on the server: token digests in a private file, or a loopback-only local user."""

from __future__ import annotations

import json
import logging
import os

import pytest
from fastapi.testclient import TestClient

from qlrf.api.app import create_app
from qlrf.api.config import ApiSettings, is_loopback
from qlrf.api.identity import (
    LOCAL_MODE_HEADER,
    Authenticator,
    IdentityConfigError,
    TokenTable,
    Unauthenticated,
    token_digest,
)
from qlrf.settings import Settings
from tests.api.support import ALICE, CAROL, TOKENS, bearer, client_for, write_tokens
from tests.remediation.support import PENDING, make_plan

ALICE_TOKEN = next(iter(TOKENS))


def test_token_digest_is_sha256_hex_as_sha256sum_prints_it():
    assert token_digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_tokens_file_maps_digests_to_normalised_identities(tmp_path):
    table = TokenTable.load(write_tokens(tmp_path / "t.yaml"))
    assert len(table) == 3
    assert table.identify(ALICE_TOKEN) == "alice@example.com"
    assert table.identify(ALICE_TOKEN + "x") is None and table.identify("") is None
    prefixed = tmp_path / "p.json"
    prefixed.write_text(json.dumps({"sha256:" + token_digest("tok-dave").upper(): "Dave"}), encoding="utf-8")
    os.chmod(prefixed, 0o600)
    assert TokenTable.load(prefixed).identify("tok-dave") == "dave"


@pytest.mark.parametrize(
    ("content", "mode", "says"),
    [
        (None, 0o600, "no such file"),
        ("{}", 0o644, "mode 0644 lets group or others read or change it; run chmod 600 on it"),
        ("{}", 0o620, "mode 0620 lets group or others"),
        ("a: [", 0o600, "not YAML or JSON (line 1)"),
        ("- a\n- b\n", 0o600, "expected a mapping of sha256(token) hex digests to identities"),
        ("", 0o600, "expected a mapping"),
        ("tok-plaintext-secret: alice\n", 0o600, "entry 1: the key must be the sha256 hex digest of a token"),
        (f"{'a' * 64}: ''\n", 0o600, "entry 1: the identity must be a non-empty string"),
        (f"{'a' * 64}: [x]\n", 0o600, "entry 1: the identity must be a non-empty string"),
        (f"{'a' * 64}: bob\n{'b' * 64}: 'Policy:Auto'\n", 0o600, "entry 2: identity 'policy:auto' is reserved"),
    ],
)
def test_bad_tokens_files_are_refused_naming_variable_file_and_entry(tmp_path, content, mode, says):
    path = tmp_path / "tokens.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
        os.chmod(path, mode)
    with pytest.raises(IdentityConfigError) as info:
        TokenTable.load(path)
    message = str(info.value)
    assert message.startswith(f"QLRF_API_TOKENS_FILE={path}: ") and says in message and "\n" not in message
    assert "tok-plaintext-secret" not in message  # a token pasted by mistake is never echoed


def test_authenticator_rules():
    table = TokenTable({token_digest("t1"): "alice"})
    tokens_only = Authenticator(table)
    assert tokens_only.identify("Bearer t1").name == "alice" and tokens_only.identify("bearer   t1 ").via == "token"
    with pytest.raises(Unauthenticated, match="no identity"):
        tokens_only.identify(None)
    with pytest.raises(Unauthenticated, match="expected 'Bearer <token>'"):
        tokens_only.identify("Bearer " + "x" * 5000)
    local = Authenticator(table, " Ops@Example.com ")
    assert local.local_mode and local.identify(None).name == "ops@example.com" and local.identify(None).via == "trusted_local"
    assert local.identify("Bearer t1").name == "alice"
    with pytest.raises(Unauthenticated, match="unknown or revoked"):
        local.identify("Bearer wrong")  # never falls back to the local user
    with pytest.raises(Unauthenticated, match="QLRF_API_TOKENS_FILE is not set"):
        Authenticator(None, "ops").identify("Bearer t1")
    with pytest.raises(IdentityConfigError, match="reserved"):
        Authenticator(None, "system:expiry")


def test_settings_and_loopback(tmp_path):
    assert ApiSettings.from_env({}) == ApiSettings("127.0.0.1", 8600, None, None)
    env = {"QLRF_API_HOST": "::1", "QLRF_API_PORT": "9001", "QLRF_API_TOKENS_FILE": str(tmp_path / "t"),
           "QLRF_API_TRUSTED_LOCAL_USER": "ops"}
    assert ApiSettings.from_env(env) == ApiSettings("::1", 9001, tmp_path / "t", "ops")
    for port, says in (("x", "QLRF_API_PORT='x': expected an integer >= 1"), ("70000", "QLRF_API_PORT=70000: expected a TCP port")):
        with pytest.raises(ValueError, match=says):
            ApiSettings.from_env({"QLRF_API_PORT": port})
    assert [is_loopback(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost", "0.0.0.0", "10.0.0.1", "example.com")] == [
        True, True, True, True, True, False, False, False]


def test_trusted_local_user_needs_a_loopback_bind(tmp_path):
    public = ApiSettings(host="0.0.0.0", trusted_local_user="ops")
    with pytest.raises(IdentityConfigError, match=r"QLRF_API_TRUSTED_LOCAL_USER is only honoured when the API binds a loopback address, not '0.0.0.0'"):
        Authenticator.from_settings(public)
    built = Authenticator.from_settings(ApiSettings(tokens_file=write_tokens(tmp_path / "t.yaml"), trusted_local_user="ops"))
    assert built.local_mode and len(built.tokens) == 3
    assert not Authenticator.from_settings(ApiSettings(host="0.0.0.0")).local_mode


def test_local_mode_says_so_on_every_response_and_is_still_no_self_approval(store, tmp_path):
    client = client_for(store, tmp_path, local_user="Ops")
    task = store.propose(make_plan(), "ops", PENDING)
    for response in (client.get("/healthz"), client.get("/api/v1/tasks"), client.get("/api/v1/tasks/task-0000000000000000"),
                     client.post(f"/api/v1/tasks/{task.id}/approve", json={"plan_hash": task.plan_hash, "reason": "x"})):
        assert response.headers[LOCAL_MODE_HEADER] == "trusted-local"
    refused = client.post(f"/api/v1/tasks/{task.id}/approve", json={"plan_hash": task.plan_hash, "reason": "x"})
    assert refused.status_code == 403  # the local user "Ops" is the requester "ops"
    approved = client.post(f"/api/v1/tasks/{task.id}/approve", json={"plan_hash": task.plan_hash, "reason": "x"}, headers=CAROL)
    assert approved.status_code == 200 and approved.json()["approver"] == "carol"
    assert approved.headers[LOCAL_MODE_HEADER] == "trusted-local"


def test_token_mode_has_no_local_header_and_logs_no_token(store, tmp_path, caplog):
    client = client_for(store, tmp_path)
    with caplog.at_level(logging.DEBUG):
        ok = client.get("/api/v1/tasks", headers=ALICE)
        refused = client.get("/api/v1/tasks", headers=bearer("tok-guessed-" + ALICE_TOKEN))
    assert ok.status_code == 200 and LOCAL_MODE_HEADER.lower() not in ok.headers
    assert refused.status_code == 401 and "tok-guessed" not in refused.text
    assert ALICE_TOKEN not in caplog.text and "tok-guessed" not in caplog.text


def test_no_identity_source_at_all_refuses_every_api_call(store, tmp_path):
    client = client_for(store, tmp_path, tokens=False)
    response = client.get("/api/v1/tasks")
    assert response.status_code == 401
    assert response.json()["detail"] == ("no identity: send 'Authorization: Bearer <token>' "
                                         "(this server has no tokens: QLRF_API_TOKENS_FILE is not set)")
    assert client.get("/healthz").status_code == 200


def test_tokens_file_changes_count_from_the_next_request(store, tmp_path, caplog):
    path = write_tokens(tmp_path / "live.yaml")
    built = Authenticator.from_settings(ApiSettings(tokens_file=path))
    client = TestClient(create_app(Settings.from_env({"QLRF_HOME": str(tmp_path / "home")}), task_store=store,
                                   identity=built), raise_server_exceptions=False)
    assert client.get("/api/v1/tasks", headers=ALICE).status_code == 200
    bob_and_carol = {t: who for t, who in TOKENS.items() if who != "Alice@Example.com"}
    write_tokens(path, bob_and_carol)  # alice revoked
    revoked = client.get("/api/v1/tasks", headers=ALICE)
    assert revoked.status_code == 401 and revoked.json()["detail"] == "bearer token refused: unknown or revoked"
    assert client.get("/api/v1/tasks", headers=CAROL).status_code == 200
    os.chmod(path, 0o644)  # unusable: fail closed, say why in the log only
    with caplog.at_level(logging.ERROR, logger="qlrf.api"):
        closed = client.get("/api/v1/tasks", headers=CAROL)
    assert closed.status_code == 401
    assert closed.json()["detail"] == "bearer token refused: the server's tokens file is unusable (see the server log)"
    assert "mode 0644 lets group or others" in caplog.text and next(iter(bob_and_carol)) not in caplog.text
    os.chmod(path, 0o600)
    assert client.get("/api/v1/tasks", headers=CAROL).status_code == 200
