"""Live discovery connectors, one package per platform, plain Python over each platform's SDK.

Every connector exposes
    discover(config, *, mapping: TagMapping, discovered_at: datetime, progress=None) -> Normalised
and yields exactly the rows the file normalisers produce (it reuses them), so the rest of the graph
cannot tell a live estate from an export. A scope (region, account, subscription, project, vCenter)
that fails is recorded in Normalised.failed_scopes as {"scope": ..., "reason": ...}; the other
scopes still count. Extra discovery facts (images, scaling groups) go to Normalised.facts.

Each platform package has the same files (config, sessions, facts or collect, discovery); the scope
fan-out, the per-scope result, the finish step, error reasons and the shared fact columns are in
`common`, once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from types import ModuleType

from qlrf.inventory.contract import Normalised
from qlrf.inventory.tags import TagMapping
from qlrf.platforms import REGISTRY, Registry


def connector(platform: str, registry: Registry = REGISTRY) -> ModuleType:
    """The connector module the platform's registry record names, imported on demand (each pulls in a heavy SDK)."""
    return registry.get(platform).load_connector()  # an unknown platform fails here, naming the known ones


def discover_from_env(
    platform: str, mapping: TagMapping, discovered_at: datetime, progress: Callable[[str], None] | None = None,
    *, registry: Registry = REGISTRY,
) -> Normalised:
    """One platform's live discovery configured from the environment (what `qlrf discover` and the
    discovery resource run for a platform without a typed resource)."""
    module = connector(platform, registry)
    return module.discover(
        module.config_from_env(), mapping=mapping, discovered_at=discovered_at, progress=progress
    )
