"""Model settings from the environment: which provider, endpoint, model, key and timeout.

The one parser for QLRF_LLM_* and the vendor variables; ``resources.llm`` (the Dagster resource of
the fleet summary) and :func:`qlrf.ai.clients.client_from_env` both read through it, so a variable
means the same thing wherever it is used. Nothing is read at import.

    QLRF_LLM_PROVIDER      openai | azure | anthropic | openai_compatible. Unset: openai_compatible
                           when QLRF_LLM_BASE_URL is set, else no model at all.
    QLRF_LLM_BASE_URL      endpoint for openai_compatible (required), openai and anthropic (optional).
    QLRF_LLM_API_KEY       the key (openai, openai_compatible: falls back to OPENAI_API_KEY;
                           azure: AZURE_OPENAI_API_KEY first; anthropic: ANTHROPIC_API_KEY first).
    QLRF_LLM_MODEL         model name (default gpt-4o-mini where a default is honest; required for
                           anthropic, and the deployment for azure unless AZURE_OPENAI_DEPLOYMENT is set).
    QLRF_LLM_TIMEOUT       seconds per request; default 30.
    AZURE_OPENAI_ENDPOINT, AZURE_OPENAI_DEPLOYMENT, OPENAI_API_VERSION   Azure OpenAI.

URLs carrying credentials are refused naming the variable (the SDK echoes URLs in its errors).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from qlrf.ai.clients.providers import PROVIDER_NAMES, PROVIDERS, Provider
from qlrf.ai.summary import DEFAULT_MODEL
from qlrf.envparse import endpoint_url, environ, strip_url_credentials, text

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_AZURE_API_VERSION = "2024-10-21"  # the GA data-plane version with structured outputs and tools


@dataclass(frozen=True)
class LlmSettings:
    base_url: str | None
    model: str
    timeout: float
    max_retries: int
    api_key: str | None = field(default=None, repr=False)
    provider: str | None = None  # None: no model configured
    api_version: str | None = None  # azure only
    deployment: str | None = None  # azure only

    def __repr__(self) -> str:  # no key, no credentials in the URL
        return f"LlmSettings({self.describe()})"

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    @property
    def vendor(self) -> Provider:
        if self.provider is None:
            raise ValueError("no model configured (QLRF_LLM_PROVIDER and QLRF_LLM_BASE_URL unset)")
        return PROVIDERS[self.provider]

    def endpoint(self) -> str | None:
        """The base URL without credentials, query or fragment: safe to log and to show."""
        return strip_url_credentials(self.base_url).split("?", 1)[0] if self.base_url else None

    def describe(self) -> str:
        if not self.enabled:
            return "no model (QLRF_LLM_BASE_URL unset): rules summary"
        who = "" if self.provider == "openai_compatible" else f"{self.provider}: "
        name = f"{self.deployment} (deployment)" if self.deployment else self.model
        return (f"{who}{name} at {self.endpoint()} (timeout {self.timeout:g} s, "
                f"key {'set' if self.api_key else 'not set'})")


def _timeout(value: str, name: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a number of seconds > 0") from None
    if not seconds > 0:
        raise ValueError(f"{name}={value!r}: expected a number of seconds > 0")
    return seconds


def _api_key(env: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    """The first key set among `names`. A key is printable ASCII without spaces; anything else (a
    second line pasted in, a tab) makes httpx refuse the header and quote it back in its error."""
    for name in names:
        key = text(env, name)
        if key:
            if not (key.isascii() and key.isprintable()) or any(ch.isspace() for ch in key):
                raise ValueError(f"{name}: the key holds whitespace, control or non-ASCII characters "
                                 "(was more than the key copied?)")
            return key
    return None


def _provider(env: Mapping[str, str], base_url: str | None) -> str | None:
    name = text(env, "QLRF_LLM_PROVIDER")
    if name is None:
        return "openai_compatible" if base_url else None  # a base URL alone always meant this
    name = name.lower()
    if name not in PROVIDERS:
        raise ValueError(f"QLRF_LLM_PROVIDER={name!r}: expected one of {', '.join(PROVIDER_NAMES)}")
    return name


def settings_from_env(env: Mapping[str, str] | None = None, max_retries: int = 2) -> LlmSettings:
    """The model settings; blank variables count as unset (envparse.text). Errors name the variable."""
    env = environ(env)
    base_url = endpoint_url(env, "QLRF_LLM_BASE_URL", "QLRF_LLM_API_KEY")
    provider = _provider(env, base_url)
    timeout_text = text(env, "QLRF_LLM_TIMEOUT")
    timeout = _timeout(timeout_text, "QLRF_LLM_TIMEOUT") if timeout_text else DEFAULT_TIMEOUT_S
    model = text(env, "QLRF_LLM_MODEL")
    if provider is None:
        return LlmSettings(base_url=None, api_key=_api_key(env, ("QLRF_LLM_API_KEY", "OPENAI_API_KEY")),
                           model=model or DEFAULT_MODEL, timeout=timeout, max_retries=max_retries)
    vendor = PROVIDERS[provider]
    where = f"QLRF_LLM_PROVIDER={provider}"
    key = _api_key(env, vendor.key_variables)
    if vendor.key_required and not key:
        raise ValueError(f"{where}: no API key: set {' or '.join(vendor.key_variables)}")
    api_version = deployment = None
    if vendor.sdk == "azure":
        base_url = endpoint_url(env, "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_KEY")
        if not base_url:
            raise ValueError(f"{where}: AZURE_OPENAI_ENDPOINT is not set (https://<resource>.openai.azure.com)")
        deployment = text(env, "AZURE_OPENAI_DEPLOYMENT") or model
        if not deployment:
            raise ValueError(f"{where}: no deployment: set AZURE_OPENAI_DEPLOYMENT (or QLRF_LLM_MODEL)")
        api_version = text(env, "OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION
    else:
        base_url = base_url or vendor.default_base_url
        if not base_url:
            raise ValueError(f"{where}: QLRF_LLM_BASE_URL is not set (the server's /v1 URL)")
        if vendor.model_required and not model:
            raise ValueError(f"{where}: QLRF_LLM_MODEL is not set (no default model for this provider)")
    return LlmSettings(base_url=base_url, api_key=key, model=model or deployment or DEFAULT_MODEL, timeout=timeout,
                       max_retries=max_retries, provider=provider, api_version=api_version, deployment=deployment)
