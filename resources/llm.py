"""The language model behind the AI summaries, as a Dagster resource (an OpenAI-compatible endpoint).

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

from collections.abc import Mapping
from dataclasses import dataclass, field

from dagster import ConfigurableResource
from pydantic import Field

from qlrf.ai.summary import DEFAULT_MODEL
from qlrf.envparse import environ, overlay, reject_url_credentials, strip_url_credentials, text

DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class LlmSettings:
    base_url: str | None
    model: str
    timeout: float
    max_retries: int
    api_key: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # no key, no credentials in the URL
        return f"LlmSettings({self.describe()})"

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)

    def endpoint(self) -> str | None:
        """The base URL without credentials, query or fragment: safe to log and to show."""
        return strip_url_credentials(self.base_url).split("?", 1)[0] if self.base_url else None

    def describe(self) -> str:
        if not self.enabled:
            return "no model (QLRF_LLM_BASE_URL unset): rules summary"
        return f"{self.model} at {self.endpoint()} (timeout {self.timeout:g} s, key {'set' if self.api_key else 'not set'})"


def _timeout(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected a number of seconds > 0") from None
    if not value > 0:
        raise ValueError(f"{name}={text!r}: expected a number of seconds > 0")
    return value


def _api_key(env: Mapping[str, str]) -> str | None:
    """QLRF_LLM_API_KEY, else OPENAI_API_KEY. A key is printable ASCII without spaces; anything else (a
    second line pasted in, a tab) makes httpx refuse the header and quote it back in its error."""
    for name in ("QLRF_LLM_API_KEY", "OPENAI_API_KEY"):
        key = text(env, name)
        if key:
            if not (key.isascii() and key.isprintable()) or any(ch.isspace() for ch in key):
                raise ValueError(f"{name}: the key holds whitespace, control or non-ASCII characters "
                                 "(was more than the key copied?)")
            return key
    return None


def settings_from_env(env: Mapping[str, str] | None = None, max_retries: int = 2) -> LlmSettings:
    """The model settings; blank variables count as unset (envparse.text)."""
    env = environ(env)
    timeout = text(env, "QLRF_LLM_TIMEOUT")
    base_url = text(env, "QLRF_LLM_BASE_URL")
    if base_url:
        reject_url_credentials(base_url, "QLRF_LLM_BASE_URL", "QLRF_LLM_API_KEY")
    return LlmSettings(
        base_url=base_url,
        api_key=_api_key(env),
        model=text(env, "QLRF_LLM_MODEL") or DEFAULT_MODEL,
        timeout=_timeout(timeout, "QLRF_LLM_TIMEOUT") if timeout else DEFAULT_TIMEOUT_S,
        max_retries=max_retries,
    )


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
        """An ``openai.OpenAI`` for the configured endpoint, or None when no endpoint is configured."""
        settings = settings or self.settings()
        if not settings.enabled:
            return None
        from openai import OpenAI  # only runs that use a model pay for the import

        # A local endpoint may need no key, but the client insists on one: send a placeholder.
        return OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key or "no-key",
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )
