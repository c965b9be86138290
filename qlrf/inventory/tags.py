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
        """Load overrides from YAML: {keys: {owner: [..], site: [..], environment: [..]}, environment_aliases: {..}}.

        Every shape is checked on load and a fault names the file and the key: `owner: team` (a string
        where a list belongs) used to become the tag keys t, e, a, m, silently deriving nothing."""
        if not path:
            return cls()
        try:
            doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"{path}: cannot read the tag mapping: {exc.strerror or exc}") from None
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
        try:
            return cls._from_doc({} if doc is None else doc)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    @classmethod
    def _from_doc(cls, doc: object) -> TagMapping:
        if not isinstance(doc, dict):
            raise ValueError(f"the top level must be a mapping with keys/environment_aliases, got {_kind(doc)}")
        unknown = sorted(str(k) for k in doc if k not in ("keys", "environment_aliases"))
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown setting; expected keys or environment_aliases")
        keys = dict(DEFAULT_KEYS)
        for attr, names in _mapping(doc.get("keys"), "keys").items():
            if attr not in DEFAULT_KEYS:
                raise ValueError(f"keys.{attr}: unknown tag attribute {attr!r}; expected one of {sorted(DEFAULT_KEYS)}")
            keys[attr] = tuple(_names(names, f"keys.{attr}"))
        aliases = dict(DEFAULT_ENV_ALIASES)
        for alias, env in _mapping(doc.get("environment_aliases"), "environment_aliases").items():
            if not isinstance(env, str) or not env:
                raise ValueError(f"environment_aliases.{alias}: must be an environment name, got {_kind(env)}")
            aliases[str(alias).lower()] = env
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


def _kind(value: object) -> str:
    return "nothing" if value is None else f"a {type(value).__name__}"


def _mapping(value: object, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: must be a mapping, got {_kind(value)}")
    return value


def _names(value: object, where: str) -> list[str]:
    """A list of tag keys; a bare string is refused rather than split into its letters."""
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}: must be a non-empty list of tag keys, got {_kind(value)}")
    for i, name in enumerate(value):
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}[{i}]: must be a tag key (text), got {_kind(name)}")
    return value
