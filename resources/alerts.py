"""Alert channels as a Dagster resource (a thin shell over qlrf.alerts).

Unset fields read the QLRF_ALERT_* / QLRF_SMTP_* variables (table in qlrf/alerts/__init__.py) when a sensor
calls :meth:`AlertsResource.dispatcher`, never at import. With nothing configured, alerts are kept in
the ledger under channel "none" (`qlrf alerts list`), never dropped silently. The webhook URLs and the SMTP password are secrets: leave them to the
environment, or bind them with ``EnvVar`` in pipelines/definitions.py, never as literal config.
"""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from qlrf.alerts.channels import Channel
from qlrf.alerts.dispatch import Dispatcher, log_warning
from qlrf.alerts.model import AlertConfigError
from qlrf.envparse import overlay


class AlertsResource(ConfigurableResource):
    """Generic JSON webhook, Slack-compatible webhook and SMTP email, deduplicated in the task database."""

    enabled: bool = Field(default=True, description="False: build no channel at all")
    webhook_url: str | None = Field(default=None, description="Default QLRF_ALERT_WEBHOOK_URL")
    slack_url: str | None = Field(default=None, description="Default QLRF_ALERT_SLACK_URL")
    smtp_host: str | None = Field(default=None, description="Default QLRF_SMTP_HOST")
    smtp_password: str | None = Field(default=None, description="Default QLRF_SMTP_PASSWORD")
    database_url: str | None = Field(
        default=None, description="Where the dedup ledger lives; default the task database (QLRF_POSTGRES_URL or SQLite)"
    )

    def _env(self) -> dict[str, str]:
        """The environment with this resource's set fields on top (envparse.overlay), read now."""
        return overlay(
            {
                "QLRF_ALERT_WEBHOOK_URL": self.webhook_url,
                "QLRF_ALERT_SLACK_URL": self.slack_url,
                "QLRF_SMTP_HOST": self.smtp_host,
                "QLRF_SMTP_PASSWORD": self.smtp_password,
            }
        )

    def channels(self) -> list[Channel] | None:
        """None: the channels the environment configures. Tests override this to capture alerts."""
        return None if self.enabled else []

    def dispatcher(self, *, audit: Any = None, log: Any = None, strict: bool = True) -> Dispatcher:
        """The configured dispatcher. ``strict=False`` (sensors whose main work is not alerting): a bad
        alert setting is logged and alerts are off for this tick, instead of failing the tick."""
        try:
            from qlrf.events.outbox import Outbox

            return Dispatcher.from_env(self._env(), url=self.database_url, audit=audit, log=log, channels=self.channels(),
                                       outbox=Outbox(self.database_url))
        except AlertConfigError as exc:
            if strict:
                raise
            (log or log_warning)(f"alerts are off: {exc}")
            return Dispatcher([], audit=audit, log=log)
