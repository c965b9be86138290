"""Which model vendors the clients speak to, and what each one honours, as data.

One record per provider: the ``openai`` package class that talks to it, its default endpoint, the
variables its key may come from (first set wins) and its capabilities. The client reads the
capabilities instead of branching on names: a provider that ignores ``response_format`` gets the
schema in the prompt instead, and every answer is re-validated whatever the provider claims.

Anthropic is reached through its OpenAI-compatible endpoint with the ``openai`` package (no second
SDK to pin and patch). That endpoint accepts tools but ignores ``strict`` and ``response_format``,
so ``structured_outputs`` is False for it and its answers are validated after the fact like all others.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal


@dataclass(frozen=True)
class Provider:
    name: str
    sdk: Literal["openai", "azure"]  # openai.OpenAI or openai.AzureOpenAI
    default_base_url: str | None  # None: the endpoint must be configured
    key_variables: tuple[str, ...]  # where the key may come from, first set wins
    key_required: bool  # a local server may need none; a vendor always does
    model_required: bool  # no default model name we could honestly pick for this vendor
    structured_outputs: bool  # honours response_format json_schema (and strict)
    tool_calling: bool
    max_tokens_param: str = "max_completion_tokens"  # older and local servers only know max_tokens
    note: str = ""


PROVIDERS = MappingProxyType({
    "openai": Provider(
        "openai", "openai", "https://api.openai.com/v1", ("QLRF_LLM_API_KEY", "OPENAI_API_KEY"),
        key_required=True, model_required=False, structured_outputs=True, tool_calling=True),
    "azure": Provider(
        "azure", "azure", None, ("AZURE_OPENAI_API_KEY", "QLRF_LLM_API_KEY"),
        key_required=True, model_required=True, structured_outputs=True, tool_calling=True,
        note="endpoint AZURE_OPENAI_ENDPOINT, deployment AZURE_OPENAI_DEPLOYMENT (else QLRF_LLM_MODEL)"),
    "anthropic": Provider(
        "anthropic", "openai", "https://api.anthropic.com/v1/", ("ANTHROPIC_API_KEY", "QLRF_LLM_API_KEY"),
        key_required=True, model_required=True, structured_outputs=False, tool_calling=True, max_tokens_param="max_tokens",
        note="OpenAI-compatible endpoint: strict and response_format are ignored, answers re-validated"),
    "openai_compatible": Provider(
        "openai_compatible", "openai", None, ("QLRF_LLM_API_KEY", "OPENAI_API_KEY"),
        key_required=False, model_required=False, structured_outputs=True, tool_calling=True, max_tokens_param="max_tokens",
        note="vLLM, Ollama, LM Studio...: QLRF_LLM_BASE_URL required"),
})

PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)
