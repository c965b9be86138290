"""Derive site, environment and owner from a VM's tags through a configurable mapping.

Estates spell these differently (Owner, owner, team, cost-center...), so the keys are data, not code.
The first key present wins; values are kept as written except for a case-folded environment alias map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

DEFAULT_KEYS: dict[str, tuple[str, ...]] = {
    "owner": ("owner", "Owner", "team", "Team", "owner-team"),
    "site": ("site", "Site", "location-code", "datacenter-site"),
    "environment": ("environment", "Environment", "env", "Env", "stage"),
}

DEFAULT_ENV_ALIASES: dict[str, str] = {
    "production": "prod",
    "prd": "prod",
    "prod": "prod",
    "stage": "staging",
    "stg": "staging",
    "staging": "staging",
    "development": "dev",
    "dev": "dev",
    "test": "dev",
}


@dataclass(frozen=True)
class TagMapping:
    keys: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_KEYS))
    environment_aliases: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ENV_ALIASES))

    @classmethod
    def from_file(cls, path: str | Path | None) -> TagMapping:
        """Load overrides from YAML: {keys: {owner: [..], site: [..], environment: [..]}, environment_aliases: {..}}."""
        if not path:
            return cls()
        doc = yaml.safe_load(Path(path).read_text()) or {}
        keys = dict(DEFAULT_KEYS)
        for attr, names in (doc.get("keys") or {}).items():
            if attr not in DEFAULT_KEYS:
                raise ValueError(f"{path}: unknown tag attribute {attr!r}; expected one of {sorted(DEFAULT_KEYS)}")
            keys[attr] = tuple(str(n) for n in names)
        aliases = dict(DEFAULT_ENV_ALIASES)
        aliases.update({str(k).lower(): str(v) for k, v in (doc.get("environment_aliases") or {}).items()})
        return cls(keys=keys, environment_aliases=aliases)

    def derive(self, tags: dict[str, str]) -> tuple[str | None, str | None, str | None]:
        """Return (site, environment, owner)."""
        site = self._first(tags, "site")
        env = self._first(tags, "environment")
        if env is not None:
            env = self.environment_aliases.get(env.lower(), env.lower())
        return site, env, self._first(tags, "owner")

    def _first(self, tags: dict[str, str], attr: str) -> str | None:
        for key in self.keys[attr]:
            value = tags.get(key)
            if value:
                return value
        return None
