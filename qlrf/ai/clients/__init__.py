"""Model clients, one interface for every vendor, and the model path of the AI orchestrator.

``client_from_env(env)`` builds the configured :class:`ModelClient` (None when no model is
configured); ``ModelProposer(client)`` is the orchestrator's model :class:`~qlrf.ai.answers.Proposer`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qlrf.ai.clients.settings import LlmSettings, settings_from_env

if TYPE_CHECKING:
    from qlrf.ai.clients.client import (
        ModelClient,
        ModelError,
        ModelReply,
        ResponseSchema,
        ToolCallRequest,
        Usage,
        sdk_client,
    )
    from qlrf.ai.clients.prices import Prices, load_prices, shipped_prices
    from qlrf.ai.clients.proposer import ModelProposer, ModelProposerFailed
    from qlrf.ai.clients.providers import PROVIDERS, Provider

# Loaded on first use (PEP 562): reading the settings (the Copilot page's context line, on every first
# visit) must not pay for the client, proposer and tool modules (~0.4 s of imports).
_LAZY = {
    **dict.fromkeys(("ModelClient", "ModelError", "ModelReply", "ResponseSchema", "ToolCallRequest", "Usage", "sdk_client"),
                    "qlrf.ai.clients.client"),
    **dict.fromkeys(("Prices", "load_prices", "shipped_prices"), "qlrf.ai.clients.prices"),
    **dict.fromkeys(("ModelProposer", "ModelProposerFailed"), "qlrf.ai.clients.proposer"),
    **dict.fromkeys(("PROVIDERS", "Provider"), "qlrf.ai.clients.providers"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def client_from_env(env: Mapping[str, str] | None = None, **options: Any) -> ModelClient | None:
    """The configured model client, or None when no model is configured (the offline router answers).

    Reads the variables when called (never at import); ``options`` go to :class:`ModelClient`
    (``sleep``, ``clock``, ``prices``, ``sdk``... for tests and tools)."""
    from qlrf.ai.clients.client import ModelClient

    settings = settings_from_env(env)
    return ModelClient(settings, **options) if settings.enabled else None


__all__ = [
    "PROVIDERS",
    "LlmSettings",
    "ModelClient",
    "ModelError",
    "ModelProposer",
    "ModelProposerFailed",
    "ModelReply",
    "Prices",
    "Provider",
    "ResponseSchema",
    "ToolCallRequest",
    "Usage",
    "client_from_env",
    "load_prices",
    "sdk_client",
    "settings_from_env",
    "shipped_prices",
]
