"""Fault catalogue, class "secrets": credentials planted in configuration must never come back out.

Endpoints whose credentials have their own variable (a vCenter, the model's base URL) refuse a URL
that carries one, with a one-line error naming the variable and never the value; URLs that are secret
by nature (webhooks, the Postgres URL) are only ever shown as scheme and host. The end-to-end attempt
plants a distinct value in every secret-bearing variable, runs failing operations (a day with every
live source unreachable, a model that answers 401, alert channels that cannot deliver) and scans
everything a person or a log collector can read for any of them.
"""

from __future__ import annotations

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
def test_a_failing_webhook_is_named_by_scheme_and_host_only(variable):
    """A webhook's path is its secret: neither the description nor the delivery error may show it."""
    from qlrf.alerts.channels import ChannelError, channels_from_env
    from qlrf.alerts.model import Alert
    from tests.fakes.base import free_port

    url = f"http://127.0.0.1:{free_port()}/services/T0/B0/{SECRET}?token={SECRET}x"
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
