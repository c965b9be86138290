"""Fault catalogue, class "secrets": credentials planted in configuration must never come back out.

Endpoints whose credentials have their own variable (a vCenter, the model's base URL) refuse a URL
that carries one, with a one-line error naming the variable and never the value; URLs that are secret
by nature (webhooks, the Postgres URL) are only ever shown as scheme and host. The end-to-end attempt
plants a distinct value in every secret-bearing variable, runs failing operations (a day with every
live source unreachable, a model that answers 401, alert channels that cannot deliver) and scans
everything a person or a log collector can read for any of them.
"""

from __future__ import annotations

import re

import pytest

from qlrf.envparse import UrlCredentialsError

pytestmark = [pytest.mark.fault]

SECRET = "Pl4nted-s3cret-Value"


def _assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"secret {secret!r} leaked into: {text!r}"


@pytest.mark.parametrize(
    "hosts",
    [
        f"svc:{SECRET}@vc01.example",
        f"https://svc:{SECRET}@vc01.example/sdk",
        f"vc02.example,svc%40corp:{SECRET}@[fd00::1]:8443",
        f"{SECRET}@vc01.example",
    ],
)
def test_vcenter_host_with_credentials_is_refused_naming_the_variable(hosts):
    from qlrf.inventory.connectors.vsphere.config import config_from_env

    with pytest.raises(UrlCredentialsError) as err:
        config_from_env({"QLRF_VSPHERE_HOSTS": hosts})
    message = str(err.value)
    assert "QLRF_VSPHERE_HOSTS" in message and "QLRF_VSPHERE_PASSWORD" in message and "\n" not in message
    _assert_clean(message, SECRET, "svc")


@pytest.mark.parametrize(
    "base_url",
    [
        f"https://bob:{SECRET}@llm.example/v1",
        f"https://llm.example/v1?api-key={SECRET}",
        f"https://llm.example/v1?key={SECRET}",
        f"https://llm.example/v1?deployment=x&token={SECRET}",
    ],
)
def test_model_base_url_with_credentials_is_refused_naming_the_variable(base_url):
    from resources.llm import LlmResource, settings_from_env

    for build in (lambda: settings_from_env({"QLRF_LLM_BASE_URL": base_url}),
                  lambda: LlmResource(base_url=base_url).settings()):
        with pytest.raises(UrlCredentialsError) as err:
            build()
        message = str(err.value)
        assert "QLRF_LLM_BASE_URL" in message and "QLRF_LLM_API_KEY" in message and "\n" not in message
        _assert_clean(message, SECRET)


@pytest.mark.parametrize(
    ("platform", "variable", "url"),
    [
        ("aws", "AWS_ENDPOINT_URL", f"https://svc:{SECRET}@ec2.internal.example"),
        ("azure", "QLRF_AZURE_ENDPOINT", f"https://management.example/?sig={SECRET}"),
        ("azure", "AZURE_AUTHORITY_HOST", f"https://app:{SECRET}@login.example"),
        ("gcp", "QLRF_GCP_ENDPOINT", f"https://compute.example/?key={SECRET}"),
    ],
)
def test_cloud_endpoint_with_credentials_is_refused_naming_the_variable(platform, variable, url):
    """SDK errors quote the endpoint ("Could not connect to the endpoint URL: ..."), so a credential in it
    would be printed with every failure."""
    import importlib

    config = importlib.import_module(f"qlrf.inventory.connectors.{platform}.config")
    with pytest.raises(UrlCredentialsError) as err:
        config.config_from_env({variable: url})
    assert variable in str(err.value) and "\n" not in str(err.value)
    _assert_clean(str(err.value), SECRET)


@pytest.mark.parametrize("key", [f"sk-{SECRET}\nsecond-line", f"sk-{SECRET}\tx", f"sk-{SECRET}-caf\u00e9"])
def test_a_malformed_model_key_is_refused_naming_the_variable(key):
    """httpx quotes an illegal header value back (b'Bearer sk-...\\n...'), in a form the plain key does not match."""
    from resources.llm import settings_from_env

    with pytest.raises(ValueError) as err:
        settings_from_env({"QLRF_LLM_BASE_URL": "http://127.0.0.1:9/v1", "QLRF_LLM_API_KEY": key})
    assert "QLRF_LLM_API_KEY" in str(err.value)
    _assert_clean(str(err.value), SECRET)


@pytest.mark.parametrize("key", [f"sk-{SECRET}\nsecond-line", f"sk-{SECRET}\tx"])
def test_a_model_failure_never_quotes_the_key_in_any_spelling(key):
    """A client built by hand (not through the resource) with a key the endpoint echoes or httpx refuses:
    the problem the summary records names the failure, not the key, escaped or folded."""
    from openai import OpenAI

    from qlrf.ai.summary import summarise

    with _EchoingFake() as model:
        client = OpenAI(base_url=model.url, api_key=key, max_retries=0, timeout=5)
        _summary, source, problems = summarise({"day": DAY, "fleet": {"vms": 1}}, client, "m")
    assert source == "rules" and len(problems) == 1
    _assert_clean(problems[0], SECRET)


def test_settings_never_show_the_postgres_password():
    from qlrf.settings import Settings

    settings = Settings.from_env({"QLRF_POSTGRES_URL": f"postgresql://qlrf:{SECRET}@db.example:5432/qlrf"})
    assert settings.postgres_url.endswith("@db.example:5432/qlrf")  # the value itself is intact for the engine
    _assert_clean(repr(settings), SECRET)
    assert settings.postgres_shown == "postgresql://db.example:5432"


def test_an_unparsable_postgres_url_is_refused_without_echoing_it():
    from qlrf.settings import Settings

    with pytest.raises(ValueError) as err:
        Settings.from_env({"QLRF_POSTGRES_URL": f"postgresql://qlrf:{SECRET}@[db/qlrf"})
    assert "QLRF_POSTGRES_URL" in str(err.value)
    _assert_clean(str(err.value), SECRET)


@pytest.mark.parametrize("variable", ["QLRF_ALERT_WEBHOOK_URL", "QLRF_ALERT_SLACK_URL"])
@pytest.mark.parametrize("path", [f"/services/T0/B0/{SECRET}?token={SECRET}x",
                                  f"/services/T0/B0/{SECRET} copied-with-a-space",  # http.client echoes the path
                                  f"/services/T0/B0/{SECRET}\u00e9"])
def test_a_failing_webhook_is_named_by_scheme_and_host_only(variable, path):
    """A webhook's path is its secret: neither the description nor the delivery error may show it."""
    from qlrf.alerts.channels import ChannelError, channels_from_env
    from qlrf.alerts.model import Alert
    from tests.fakes.base import free_port

    url = f"http://127.0.0.1:{free_port()}{path}"
    (channel,) = channels_from_env({variable: url, "QLRF_ALERT_TIMEOUT": "1"})
    assert channel.describe().endswith("(127.0.0.1)")
    with pytest.raises(ChannelError) as err:
        channel.send(Alert(kind="test", key="k", severity="warning", title="t", text="x"))
    _assert_clean(str(err.value) + channel.describe() + repr(channel), SECRET)


def test_a_webhook_url_that_is_not_http_is_refused_without_echoing_it():
    from qlrf.alerts.channels import channels_from_env
    from qlrf.alerts.model import AlertConfigError

    with pytest.raises(AlertConfigError) as err:
        channels_from_env({"QLRF_ALERT_SLACK_URL": f"hooks.slack.com/services/{SECRET}"})
    assert "QLRF_ALERT_SLACK_URL" in str(err.value)
    _assert_clean(str(err.value), SECRET)


# --- end to end: plant, fail, scan ----------------------------------------------------------------

DAY = "2026-11-20"
# One distinct value per secret-bearing variable: a leak names its source.
PLANTED = {
    "AWS_SECRET_ACCESS_KEY": "awsSecretPlanted0001",
    "AWS_SESSION_TOKEN": "awsSessionPlanted0002",
    "AZURE_CLIENT_SECRET": "azureSecretPlanted0003",
    "QLRF_VSPHERE_PASSWORD": "vspherePwdPlanted0004",
    "QLRF_LLM_API_KEY": "sk-llmKeyPlanted0005",
    "QLRF_ALERT_WEBHOOK_TOKEN": "hookTokenPlanted0006",
    "QLRF_SMTP_PASSWORD": "smtpPwdPlanted0007",
    "webhook path": "hookPathPlanted0008",
    "slack path": "slackPathPlanted0009",
    "postgres password": "pgPwdPlanted0010",
    "gcp private key id": "gcpKeyIdPlanted0011",
}


def _gcp_credentials_file(path, token_uri: str) -> str:
    """A service-account key file (a real RSA key, so google-auth loads it) with its token endpoint."""
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "proj-secrets", "private_key_id": PLANTED["gcp private key id"],
        "private_key": pem, "client_email": "qlrf@proj-secrets.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": token_uri,
    }))
    return pem.splitlines()[5]  # a line of the key body: must not leak either


class _EchoingFake:
    """One loopback endpoint that refuses everything and quotes the request back, as a misconfigured
    proxy or a chatty API does: OpenAI's error shape for the model (401, key and path quoted), EC2's XML
    error for AWS (403, every header quoted: the session token rides in one), OAuth's for token
    endpoints and JSON for anything else (401, headers and body quoted)."""

    def __enter__(self):
        import http.server
        import json
        import threading
        from xml.sax.saxutils import escape

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8", "replace")
                if self.path.startswith("/v1/"):
                    said = f"Incorrect API key provided: {self.headers.get('Authorization')} ({self.command} {self.path})"
                    status, kind = 401, "application/json"
                    body = json.dumps({"error": {"message": said, "type": "invalid_request_error",
                                                 "code": "invalid_api_key"}})
                elif "X-Amz-Date" in self.headers:
                    headers = "; ".join(f"{k}={v}" for k, v in self.headers.items())
                    status, kind = 403, "text/xml"
                    body = (f"<Response><Errors><Error><Code>AuthFailure</Code><Message>{escape(headers)}"
                            "</Message></Error></Errors><RequestID>r-1</RequestID></Response>")
                else:
                    said = f"{self.command} {self.path} headers {dict(self.headers)} body {raw}"
                    status, kind = 401, "application/json"
                    error = ({"error": "invalid_grant", "error_description": said} if self.path.endswith("/token")
                             else {"error": {"code": 401, "message": said, "status": "UNAUTHENTICATED"}})
                    body = json.dumps(error)
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's names

            def log_message(self, *_args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/v1"
        return self

    def __exit__(self, *_exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def scratch_database():
    """A database of its own on the machine's PostgreSQL (trust authentication: any password is accepted,
    so a planted one travels through every connection string without being checked)."""
    import uuid

    import psycopg2

    name = f"qlrf_secrets_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        from qlrf.db import dispose_engines

        dispose_engines()
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _database_text(name: str) -> str:
    """Every row of every table in the database as text: event log, runs, task store, audit, ledger."""
    import psycopg2

    with psycopg2.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        tables = [row[0] for row in cur.fetchall()]
        out = []
        for table in tables:
            cur.execute(f'SELECT t::text FROM "{table}" t')
            out += [f"{table}: {row[0]}" for row in cur.fetchall()]
    return "\n".join(out)


def _parquet_text(root) -> str:
    """Every Parquet file's rows, schema and key-value metadata as text."""
    import pyarrow.parquet as pq

    out = []
    for path in sorted(root.rglob("*.parquet")):
        table = pq.read_table(path)
        out += [str(path), str(table.schema), str(table.schema.metadata), str(pq.ParquetFile(path).metadata.metadata),
                str(table.to_pylist())]
    return "\n".join(out)


def _files_text(root) -> str:
    """Every other file under `root` (compute logs, dagster.yaml, the run's own files), bytes as text."""
    return "\n".join(f"{p}: {p.read_bytes().decode('utf-8', 'replace')}"
                     for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".parquet")


# Credentials derived from the planted ones, which no literal search finds: a bearer token (Google's
# self-signed JWT carries the private key id base64-encoded and is valid for an hour) or a JWT anywhere.
DERIVED = re.compile(r"(?i)\bbearer\s+(?!\*)[A-Za-z0-9._~+/=-]{16,}|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def _leaks(sources: dict[str, str], secrets: dict[str, str]) -> list[str]:
    found = [f"{what} leaked into {where}" for where, text in sources.items()
             for what, secret in secrets.items() if secret in text]
    return found + [f"a bearer token or JWT ({m.group()[:24]}...) leaked into {where}"
                    for where, text in sources.items() for m in DERIVED.finditer(text)]


def _planted_env(tmp_path, database: str, dead: int, echo: str, model_url: str, vcenters: str) -> tuple[dict, dict]:
    """(environment for `qlrf run`, every planted secret by name): AWS and GCP pointed at `echo` (a fake
    that refuses and quotes the request back), Azure and the alert channels at the `dead` port, vSphere
    at `vcenters`, the model at `model_url`, the Dagster instance and task tables in `database`."""
    import os

    secrets = dict(PLANTED)
    secrets["gcp private key"] = _gcp_credentials_file(tmp_path / "gcp.json", f"{echo}/token")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_", "AWS_", "AZURE_", "GOOGLE_"))}
    env.update({
        "QLRF_HOME": str(tmp_path / "home"), "PYTHONUNBUFFERED": "1",
        "QLRF_POSTGRES_URL": f"postgresql://postgres:{PLANTED['postgres password']}@127.0.0.1:5432/{database}",
        **{f"QLRF_SOURCE_{p}": "live" for p in ("AWS", "AZURE", "GCP", "VSPHERE")},
        "AWS_ACCESS_KEY_ID": "AKIAPLANTEDKEYID", "AWS_SECRET_ACCESS_KEY": PLANTED["AWS_SECRET_ACCESS_KEY"],
        "AWS_SESSION_TOKEN": PLANTED["AWS_SESSION_TOKEN"], "AWS_ENDPOINT_URL": echo,
        "AWS_DEFAULT_REGION": "us-east-1", "QLRF_AWS_REGIONS": "us-east-1", "QLRF_AWS_MAX_ATTEMPTS": "0",
        "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000001", "AZURE_CLIENT_ID": "qlrf-client",
        "AZURE_CLIENT_SECRET": PLANTED["AZURE_CLIENT_SECRET"], "AZURE_AUTHORITY_HOST": f"https://127.0.0.1:{dead}",
        "QLRF_AZURE_ENDPOINT": f"https://127.0.0.1:{dead}", "QLRF_AZURE_RETRY_TOTAL": "0",
        "QLRF_AZURE_SUBSCRIPTIONS": "00000000-0000-0000-0000-0000000000aa",
        "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "gcp.json"), "QLRF_GCP_PROJECTS": "proj-secrets",
        "QLRF_GCP_ENDPOINT": echo,
        "QLRF_VSPHERE_HOSTS": vcenters, "QLRF_VSPHERE_USER": "svc-qlrf", "QLRF_VSPHERE_INSECURE": "1",
        "QLRF_VSPHERE_PASSWORD": PLANTED["QLRF_VSPHERE_PASSWORD"],
        "QLRF_LLM_BASE_URL": model_url, "QLRF_LLM_API_KEY": PLANTED["QLRF_LLM_API_KEY"], "QLRF_LLM_TIMEOUT": "5",
        "QLRF_ALERT_WEBHOOK_URL": f"http://127.0.0.1:{dead}/hooks/{PLANTED['webhook path']}",
        "QLRF_ALERT_WEBHOOK_TOKEN": PLANTED["QLRF_ALERT_WEBHOOK_TOKEN"],
        "QLRF_ALERT_SLACK_URL": f"http://127.0.0.1:{dead}/services/T0/B0/{PLANTED['slack path']}",
        "QLRF_ALERT_TIMEOUT": "2",
        "QLRF_SMTP_HOST": "127.0.0.1", "QLRF_SMTP_PORT": str(dead), "QLRF_SMTP_TLS": "none",
        "QLRF_SMTP_FROM": "qlrf@example.org", "QLRF_SMTP_TO": "ops@example.org", "QLRF_SMTP_USER": "qlrf",
        "QLRF_SMTP_PASSWORD": PLANTED["QLRF_SMTP_PASSWORD"],
    })
    return env, secrets


def _run_and_scan(env: dict, database: str, monkeypatch, *platforms: str) -> dict[str, str]:
    """`qlrf run` for DAY as a process, then everything a person or a log collector can read, by place."""
    import subprocess
    import sys
    from pathlib import Path

    argv = [sys.executable, "-m", "qlrf.cli", "run", "--date", DAY, *(a for p in platforms for a in ("--platform", p))]
    # In process: what this checks is where the secrets go, not the code-location origin (tests/pipelines/test_run_launch.py).
    proc = subprocess.run(argv, env={**env, "QLRF_RUN_MODE": "in_process"}, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0, proc.stdout + proc.stderr  # the day failed, and said so
    home = Path(env["QLRF_HOME"])
    return {
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        "alerts": _send_alerts_about(proc.stdout + proc.stderr, env, monkeypatch),
        "event log and tables": _database_text(database),
        "event log (instance)": _event_log_text(home / "dagster", env, monkeypatch),
        "parquet": _parquet_text(home),
        "files under QLRF_HOME": _files_text(home),
    }


@pytest.mark.slow
def test_planted_secrets_never_leave_a_failing_day(tmp_path, scratch_database, monkeypatch):
    """AWS and GCP refusing and quoting the request back, Azure unreachable, one vCenter of two down, the
    model answering 401 (and quoting the key it got), every alert channel failing: the day fails loudly, and no planted secret reaches
    stdout/stderr, the Dagster event log, compute logs, any Parquet file, the audit log, the alert
    ledger or an alert payload."""
    from tests.fakes.base import free_port
    from tests.servers.vcsim import start_vcsim

    dead = free_port()
    with _EchoingFake() as model, start_vcsim(vms=4, datacenters=1) as vcenter:
        env, secrets = _planted_env(tmp_path, scratch_database, dead, model.base, model.url,
                                    f"{vcenter.host}:{vcenter.port},127.0.0.1:{dead}")
        sources = _run_and_scan(env, scratch_database, monkeypatch)
    # vSphere's live vCenter answered, the dead one failed its scope: the partition is written, but the
    # day is not whole, so qlrf run says so (a failed error-severity check fails the day).
    assert "FAIL  vsphere" in sources["stdout"] and "inventory:all_scopes_discovered" in sources["stdout"], sources["stdout"]
    assert "Summary (rules)" in sources["stdout"], sources["stdout"]
    assert "Dagster instance: postgres (postgresql://127.0.0.1:5432)" in sources["stdout"]  # where, not who
    assert "HTTP 401" in sources["event log (instance)"]  # the model was asked, and refused
    assert not _leaks(sources, secrets), "\n".join(_leaks(sources, secrets))


@pytest.mark.slow
@pytest.mark.parametrize("where", ["vcenter", "model"])
def test_credentials_in_urls_fail_the_day_without_leaking(where, tmp_path, scratch_database, monkeypatch):
    """A vCenter entry `user:password@host`, or a model base URL with `?api-key=`: the run that reads it
    fails naming the variable, and the embedded value appears nowhere."""
    from tests.fakes.base import free_port
    from tests.servers.vcsim import start_vcsim

    dead = free_port()
    embedded = f"{SECRET}-{where}"
    with _EchoingFake() as model, start_vcsim(vms=4, datacenters=1) as vcenter:
        good_host = f"{vcenter.host}:{vcenter.port}"
        model_url = f"{model.url}?api-key={embedded}" if where == "model" else model.url
        host = f"svc:{embedded}@{good_host}" if where == "vcenter" else good_host
        env, secrets = _planted_env(tmp_path, scratch_database, dead, model.base, model_url, host)
        sources = _run_and_scan(env, scratch_database, monkeypatch, "vsphere")
    secrets[f"{where} URL credential"] = embedded
    assert not _leaks(sources, secrets), "\n".join(_leaks(sources, secrets))
    variable = {"vcenter": "QLRF_VSPHERE_HOSTS", "model": "QLRF_LLM_BASE_URL"}[where]
    assert variable in sources["stdout"], sources["stdout"]


def _event_log_text(dagster_home, env: dict, monkeypatch) -> str:
    """Every event of every run, read back through the instance the way the UI reads it."""
    from dagster import DagsterInstance

    from pipelines.instance import psycopg2_url

    monkeypatch.setenv("QLRF_DAGSTER_PG_URL", psycopg2_url(env["QLRF_POSTGRES_URL"]))
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        assert runs, "no run was recorded"
        return "\n".join(str(event) for run in runs for event in instance.all_logs(run.run_id))


def _send_alerts_about(failures: str, env: dict, monkeypatch) -> str:
    """Alert the day's failures through every configured channel (each fails), with the audit log in
    the task database: what the dispatcher logged and reported, and the payloads each channel built."""
    from qlrf.alerts.dispatch import Dispatcher
    from qlrf.alerts.model import Alert
    from qlrf.remediation.audit import AuditLog

    for name in ("QLRF_POSTGRES_URL", "QLRF_HOME"):
        monkeypatch.setenv(name, env[name])
    said: list[str] = []
    dispatcher = Dispatcher.from_env(env, audit=AuditLog(), log=said.append)
    alert = Alert(kind="run_failure", severity="warning", title="qlrf run failed", text=failures[-1500:] or "failed",
                  key=f"run_failure|{DAY}")
    result = dispatcher.send(alert)
    assert set(result.failed) == {"webhook", "slack", "email"}, result
    bodies = [str(c.body(alert)) if hasattr(c, "body") else c.message(alert).get_content() for c in dispatcher.channels]
    return "\n".join([*said, str(result), *(c.describe() for c in dispatcher.channels), *bodies])
