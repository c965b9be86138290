"""Alert channels against loopback receivers: a JSON webhook, a Slack-style webhook, an SMTP server."""

from __future__ import annotations

import email
import json
import logging
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy

import pytest

from qlrf.alerts.channels import EmailChannel, SlackChannel, WebhookChannel, channels_from_env
from qlrf.alerts.dispatch import Dispatcher
from qlrf.alerts.ledger import AlertLedger
from qlrf.alerts.model import Alert, AlertConfigError

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SECRET_PATH = "/services/T000/B000/sEcReTkEy"
PASSWORD = "hunter2-smtp-pw"


def _alert(key: str = "run_failure|abc123", severity: str = "critical") -> Alert:
    return Alert(
        kind="run_failure",
        severity=severity,
        title="remediation_execution_job failed",
        text="wave 0 health gate failed: 1/2 healthy",
        key=key,
        fields={"job": "remediation_execution_job", "run_id": "abc123"},
        link="http://dagster.local/runs/abc123",
    )


# --- channels ------------------------------------------------------------------------------------


def test_webhook_posts_the_alert_as_json(http_receiver):
    WebhookChannel(http_receiver.url + "/hook", token="tok-123").send(_alert())
    [post] = http_receiver.posts
    assert post.path == "/hook"
    assert post.headers["content-type"] == "application/json"
    assert post.headers["authorization"] == "Bearer tok-123"
    body = post.body
    assert body["source"] == "resilience-fabric"
    assert (body["kind"], body["severity"], body["key"]) == ("run_failure", "critical", "run_failure|abc123")
    assert body["fields"] == {"job": "remediation_execution_job", "run_id": "abc123"}
    assert body["link"] == "http://dagster.local/runs/abc123"
    assert body["text"].startswith("wave 0 health gate failed")


def test_slack_payload_has_text_and_blocks(http_receiver):
    SlackChannel(http_receiver.url + SECRET_PATH).send(_alert())
    body = http_receiver.posts[0].body
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith(":rotating_light: [critical] remediation_execution_job failed")
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "section", "context"]
    assert body["blocks"][0]["text"] == {"type": "plain_text", "text": "[critical] remediation_execution_job failed"}
    assert body["blocks"][2]["fields"][0]["text"] == "*job*\nremediation_execution_job"
    assert "<http://dagster.local/runs/abc123|open>" in body["blocks"][3]["elements"][0]["text"]


def test_slack_limits_are_respected(http_receiver):
    long = Alert("drift_findings", "warning", "t" * 400, "x" * 5000, "k", {f"f{i}": "v" * 3000 for i in range(14)})
    SlackChannel(http_receiver.url + "/s").send(long)
    body = http_receiver.posts[0].body
    assert len(body["blocks"][0]["text"]["text"]) <= 150
    assert len(body["blocks"][1]["text"]["text"]) <= 3000
    assert len(body["blocks"][2]["fields"]) == 10
    assert all(len(f["text"]) <= 2000 for f in body["blocks"][2]["fields"])


def test_email_over_smtp_with_login(smtp_receiver):
    channel = EmailChannel(smtp_receiver.host, "qlrf@example.org", ["ops@example.org", "sre@example.org"],
                           port=smtp_receiver.port, user="alerts", password=PASSWORD, tls="none")
    channel.send(_alert())
    assert smtp_receiver.logins == [("alerts", PASSWORD)]
    [msg] = smtp_receiver.messages
    assert msg["from"] == "qlrf@example.org"
    assert msg["to"] == ["ops@example.org", "sre@example.org"]
    parsed = email.message_from_bytes(msg["raw"], policy=default_policy)
    assert parsed["Subject"] == "[qlrf critical] remediation_execution_job failed"
    assert parsed["X-QLRF-Alert-Key"] == "run_failure|abc123"
    body = parsed.get_content()
    assert "wave 0 health gate failed" in body and "run_id: abc123" in body


def test_starttls_is_required_by_default(smtp_receiver):
    """The loopback server offers no STARTTLS: the default channel refuses to send in clear text."""
    channel = EmailChannel(smtp_receiver.host, "qlrf@example.org", ["ops@example.org"], port=smtp_receiver.port,
                           user="alerts", password=PASSWORD)
    with pytest.raises(Exception, match="STARTTLS") as info:
        channel.send(_alert())
    assert PASSWORD not in str(info.value)
    assert smtp_receiver.logins == [] and smtp_receiver.messages == []


# --- dispatch and deduplication ------------------------------------------------------------------


def test_dispatcher_deduplicates_per_key_within_the_window(http_receiver, smtp_receiver, tmp_path):
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    channels = [
        WebhookChannel(http_receiver.url + "/hook"),
        SlackChannel(http_receiver.url + SECRET_PATH),
        EmailChannel(smtp_receiver.host, "qlrf@example.org", ["ops@example.org"], port=smtp_receiver.port, tls="none"),
    ]
    dispatcher = Dispatcher(channels, AlertLedger(url), window=timedelta(hours=6))
    first = dispatcher.send(_alert(), now=NOW)
    assert first.sent == ["webhook", "slack", "email"] and first.ok
    again = dispatcher.send(_alert(), now=NOW + timedelta(hours=1))
    assert again.sent == [] and again.suppressed == ["webhook", "slack", "email"]
    other = dispatcher.send(_alert(key="run_failure|other"), now=NOW + timedelta(hours=1))
    assert other.sent == ["webhook", "slack", "email"]
    assert len(http_receiver.posts) == 4 and len(smtp_receiver.messages) == 2

    # A new dispatcher on the same database (a restart) still remembers; after the window it sends again.
    restarted = Dispatcher(channels, AlertLedger(url), window=timedelta(hours=6))
    assert restarted.send(_alert(), now=NOW + timedelta(hours=5)).suppressed == ["webhook", "slack", "email"]
    assert restarted.send(_alert(), now=NOW + timedelta(hours=7)).sent == ["webhook", "slack", "email"]
    assert len(http_receiver.posts) == 6


def test_a_failing_channel_does_not_stop_the_others_and_is_retried(http_receiver, smtp_receiver, caplog):
    dead = SlackChannel("http://127.0.0.1:9" + SECRET_PATH, timeout=2)  # discard port: connection refused
    failing = WebhookChannel(http_receiver.url + "/hook?key=abc-secret", token="tok-secret")
    email_ch = EmailChannel(smtp_receiver.host, "qlrf@example.org", ["ops@example.org"], port=smtp_receiver.port,
                            user="alerts", password=PASSWORD, tls="none")
    http_receiver.status = 500
    dispatcher = Dispatcher([dead, failing, email_ch])
    with caplog.at_level(logging.WARNING, logger="qlrf.alerts"):
        result = dispatcher.send(_alert(), now=NOW)
    assert result.sent == ["email"]
    assert set(result.failed) == {"slack", "webhook"}
    assert result.failed["webhook"] == "webhook(127.0.0.1): HTTP 500 Internal Server Error"
    text = caplog.text + json.dumps(result.failed)
    for secret in (SECRET_PATH, "sEcReTkEy", "abc-secret", "tok-secret", PASSWORD):
        assert secret not in text
    assert "not delivered" in caplog.text

    # Next time the failed channels are tried again; the one that delivered is suppressed.
    http_receiver.status = 200
    retry = dispatcher.send(_alert(), now=NOW + timedelta(minutes=5))
    assert retry.sent == ["webhook"] and retry.suppressed == ["email"] and set(retry.failed) == {"slack"}


def test_redirects_are_failures_not_silent_gets(http_receiver):
    http_receiver.redirect = True
    result = Dispatcher([WebhookChannel(http_receiver.url + "/hook")]).send(_alert())
    assert result.failed == {"webhook": "webhook(127.0.0.1): HTTP 302 Found"}


def test_minimum_severity_drops_lower_alerts(http_receiver):
    dispatcher = Dispatcher([WebhookChannel(http_receiver.url)], min_severity="warning")
    assert dispatcher.send(_alert(severity="info")).dropped
    assert dispatcher.send(_alert(severity="warning")).sent == ["webhook"]
    assert len(http_receiver.posts) == 1


def test_dispatcher_audits_deliveries_without_secrets(http_receiver, tmp_path):
    from qlrf.remediation.audit import AuditLog

    audit = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}")
    Dispatcher([SlackChannel(http_receiver.url + SECRET_PATH)], audit=audit).send(_alert())
    [record] = audit.records(kind="alert")
    assert record.subject == "run_failure|abc123"
    assert record.data["sent"] == ["slack"] and record.data["severity"] == "critical"
    assert SECRET_PATH not in json.dumps(record.data)


# --- configuration -------------------------------------------------------------------------------


def test_channels_from_env():
    env = {
        "QLRF_ALERT_WEBHOOK_URL": "https://hooks.example.org/qlrf",
        "QLRF_ALERT_WEBHOOK_TOKEN": "t",
        "QLRF_ALERT_SLACK_URL": "https://hooks.slack.com" + SECRET_PATH,
        "QLRF_SMTP_HOST": "smtp.example.org",
        "QLRF_SMTP_FROM": "qlrf@example.org",
        "QLRF_SMTP_TO": "a@example.org, b@example.org",
        "QLRF_SMTP_USER": "u",
        "QLRF_SMTP_PASSWORD": PASSWORD,
    }
    channels = channels_from_env(env)
    assert [c.name for c in channels] == ["webhook", "slack", "email"]
    assert [c.describe() for c in channels] == [
        "webhook(hooks.example.org)", "slack(hooks.slack.com)", "email(smtp.example.org:587, 2 recipient(s))",
    ]
    assert channels_from_env({}) == []
    dispatcher = Dispatcher.from_env({**env, "QLRF_ALERT_DEDUP_HOURS": "2", "QLRF_ALERT_MIN_SEVERITY": "warning"})
    assert dispatcher.window == timedelta(hours=2) and dispatcher.min_severity == "warning"
    assert not Dispatcher.from_env({}).enabled


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QLRF_ALERT_SLACK_URL": "file:///etc/passwd"}, "QLRF_ALERT_SLACK_URL: expected an http"),
        ({"QLRF_SMTP_HOST": "smtp", "QLRF_SMTP_FROM": "a@b"}, "QLRF_SMTP_TO"),
        ({"QLRF_SMTP_HOST": "smtp", "QLRF_SMTP_FROM": "a@b", "QLRF_SMTP_TO": "c@d", "QLRF_SMTP_TLS": "maybe"}, "QLRF_SMTP_TLS"),
        ({"QLRF_ALERT_TIMEOUT": "soon"}, "QLRF_ALERT_TIMEOUT"),
    ],
)
def test_bad_configuration_names_the_variable(env, message):
    with pytest.raises(AlertConfigError, match=message) as info:
        Dispatcher.from_env(env)
    assert "/etc/passwd" not in str(info.value)
