"""Which provider the environment configures, and the one-line errors that name the variable."""

from __future__ import annotations

import pytest

from qlrf.ai.clients import PROVIDERS, client_from_env, settings_from_env
from qlrf.envparse import UrlCredentialsError

KEY = "sk-settings-0123456789SECRET"


def test_nothing_configured_means_no_model():
    assert client_from_env({}) is None
    assert client_from_env({"OPENAI_API_KEY": KEY}) is None  # a key alone does not switch a model on
    assert not settings_from_env({"ANTHROPIC_API_KEY": KEY}).enabled


def test_a_base_url_alone_is_an_openai_compatible_server():
    s = settings_from_env({"QLRF_LLM_BASE_URL": "http://127.0.0.1:11434/v1", "QLRF_LLM_MODEL": "llama3.1"})
    assert (s.provider, s.base_url, s.model, s.api_key) == ("openai_compatible", "http://127.0.0.1:11434/v1",
                                                            "llama3.1", None)
    assert s.describe() == "llama3.1 at http://127.0.0.1:11434/v1 (timeout 30 s, key not set)"


def test_openai_defaults_to_the_vendor_endpoint_and_needs_a_key():
    s = settings_from_env({"QLRF_LLM_PROVIDER": "OpenAI", "OPENAI_API_KEY": KEY})
    assert (s.provider, s.base_url, s.model) == ("openai", "https://api.openai.com/v1", "gpt-4o-mini")
    with pytest.raises(ValueError, match=r"^QLRF_LLM_PROVIDER=openai: no API key: set QLRF_LLM_API_KEY or OPENAI_API_KEY$"):
        settings_from_env({"QLRF_LLM_PROVIDER": "openai"})


def test_azure_reads_its_own_variables():
    env = {"QLRF_LLM_PROVIDER": "azure", "AZURE_OPENAI_ENDPOINT": "https://res.openai.azure.com",
           "AZURE_OPENAI_API_KEY": KEY, "AZURE_OPENAI_DEPLOYMENT": "prod-4o", "OPENAI_API_VERSION": "2025-01-01-preview"}
    s = settings_from_env(env)
    assert (s.provider, s.base_url, s.deployment, s.api_version, s.api_key) == (
        "azure", "https://res.openai.azure.com", "prod-4o", "2025-01-01-preview", KEY)
    assert KEY not in repr(s) and "prod-4o (deployment)" in s.describe()
    with pytest.raises(ValueError, match="AZURE_OPENAI_ENDPOINT is not set"):
        settings_from_env({k: v for k, v in env.items() if k != "AZURE_OPENAI_ENDPOINT"})
    with pytest.raises(ValueError, match="no deployment: set AZURE_OPENAI_DEPLOYMENT"):
        settings_from_env({k: v for k, v in env.items() if k != "AZURE_OPENAI_DEPLOYMENT"})
    with pytest.raises(UrlCredentialsError, match="AZURE_OPENAI_ENDPOINT") as err:
        settings_from_env({**env, "AZURE_OPENAI_ENDPOINT": f"https://res.openai.azure.com/?api-key={KEY}"})
    assert KEY not in str(err.value)


def test_anthropic_needs_a_model_name_and_its_key():
    env = {"QLRF_LLM_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": KEY, "QLRF_LLM_MODEL": "claude-sonnet-4-5"}
    s = settings_from_env(env)
    assert (s.base_url, s.api_key, s.model) == ("https://api.anthropic.com/v1/", KEY, "claude-sonnet-4-5")
    assert not PROVIDERS["anthropic"].structured_outputs  # its OpenAI-compatible endpoint ignores response_format
    with pytest.raises(ValueError, match="QLRF_LLM_MODEL is not set"):
        settings_from_env({k: v for k, v in env.items() if k != "QLRF_LLM_MODEL"})


@pytest.mark.parametrize(("env", "message"), [
    ({"QLRF_LLM_PROVIDER": "bedrock"}, "QLRF_LLM_PROVIDER='bedrock': expected one of openai, azure, anthropic, "
                                       "openai_compatible"),
    ({"QLRF_LLM_PROVIDER": "openai_compatible"}, "QLRF_LLM_PROVIDER=openai_compatible: QLRF_LLM_BASE_URL is not set"),
    ({"QLRF_LLM_BASE_URL": "http://127.0.0.1:9/v1", "QLRF_LLM_TIMEOUT": "-1"}, "QLRF_LLM_TIMEOUT='-1'"),
])
def test_bad_settings_name_the_variable_in_one_line(env, message):
    with pytest.raises(ValueError) as err:
        settings_from_env(env)
    assert message in str(err.value) and "\n" not in str(err.value)
