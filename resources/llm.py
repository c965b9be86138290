"""The language model behind the AI summaries, as a Dagster resource.

The variables are parsed by ``qlrf.ai.clients.settings`` (shared with the AI orchestrator's model
path): QLRF_LLM_PROVIDER picks openai, azure, anthropic or openai_compatible (the default when only a
base URL is set); the fields below override their variables.

Every field is optional: unset means "read the variable when a run calls `client()`", never at import
or definition time, so the code location loads with no key and no network.

    QLRF_LLM_BASE_URL   OpenAI-compatible endpoint, e.g. https://api.openai.com/v1 or a local vLLM /
                        Ollama /v1. Unset: no model at all, summaries come from the rules. A URL with
                        user:password@ or a key in its query (?api-key=, ?key=, ?token=) is refused: the
                        client and its errors echo the URL, so the key belongs in QLRF_LLM_API_KEY.
    QLRF_LLM_API_KEY    the key (falls back to OPENAI_API_KEY); may stay unset for a local endpoint.
    QLRF_LLM_MODEL      model name; default gpt-4o-mini.
    QLRF_LLM_TIMEOUT    seconds per request; default 30.

The key is a secret: leave it to the environment or bind it with ``EnvVar("QLRF_LLM_API_KEY")``,
never as literal config. It is kept out of the resource's repr, `describe()` and every log line.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from qlrf.ai.clients.settings import DEFAULT_TIMEOUT_S, LlmSettings, settings_from_env
from qlrf.ai.summary import DEFAULT_MODEL
from qlrf.envparse import overlay

__all__ = ["DEFAULT_TIMEOUT_S", "LlmResource", "LlmSettings", "settings_from_env"]


class LlmResource(ConfigurableResource):
    """An OpenAI-compatible chat model; with no base URL configured there is no model (rules only)."""

    base_url: str | None = Field(default=None, description="Default QLRF_LLM_BASE_URL; unset = no model")
    api_key: str | None = Field(
        default=None, repr=False, description="Default QLRF_LLM_API_KEY, then OPENAI_API_KEY (secret: use EnvVar)"
    )
    model: str | None = Field(default=None, description=f"Default QLRF_LLM_MODEL, else {DEFAULT_MODEL}")
    timeout: float | None = Field(default=None, description=f"Seconds per request; default QLRF_LLM_TIMEOUT, else {DEFAULT_TIMEOUT_S:g}")
    max_retries: int = Field(default=2, description="Client retries on 429, 5xx and timeouts (with backoff)")

    def settings(self) -> LlmSettings:
        """Fields that are set win over the environment (envparse.overlay), read now, not at import."""
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"LlmResource.timeout={self.timeout!r}: expected a number of seconds > 0")
        fields = {
            "QLRF_LLM_BASE_URL": self.base_url,
            "QLRF_LLM_API_KEY": self.api_key,
            "QLRF_LLM_MODEL": self.model,
            "QLRF_LLM_TIMEOUT": self.timeout,
        }
        return settings_from_env(overlay(fields), max_retries=self.max_retries)

    def client(self, settings: LlmSettings | None = None):
        """The ``openai`` package client of the configured provider, or None when no model is configured."""
        settings = settings or self.settings()
        from qlrf.ai.clients import sdk_client  # the provider's openai package client (OpenAI or AzureOpenAI)

        return sdk_client(settings)
