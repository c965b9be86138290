"""Estimated cost of a model request from the shipped list prices (``policy/model_prices.yaml``).

A model that is not listed has no price: the cost is ``None`` with a note saying so, because a guessed
price would read like a real one on a dashboard. Dated snapshots (``gpt-4o-mini-2024-07-18``,
``claude-sonnet-4-5-20250929``) fall back to their undated name; nothing else is matched loosely
(``gpt-4o`` must never price ``gpt-4o-mini``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qlrf.ai.taskspec import field_errors
from qlrf.settings import project_root

PRICES_PATH = project_root() / "policy" / "model_prices.yaml"
_DATED = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


class _Price(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class _PriceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    unit: Literal["usd_per_million_tokens"]
    models: dict[str, _Price]


@dataclass(frozen=True)
class Prices:
    models: Mapping[str, _Price]
    source: str = "policy/model_prices.yaml"

    def lookup(self, model: str | None) -> tuple[str, _Price] | None:
        if not model:
            return None
        for name in (model, _DATED.sub("", model)):
            if name in self.models:
                return name, self.models[name]
        return None

    def cost(self, model: str | None, prompt_tokens: int, completion_tokens: int) -> tuple[float | None, str | None]:
        """(USD, None) for a listed model; (None, why) otherwise."""
        found = self.lookup(model)
        if found is None:
            return None, f"no price for model {model!r} in {self.source}: cost unknown"
        _, price = found
        return round((prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000, 8), None


def load_prices(path: str | Path = PRICES_PATH) -> Prices:
    """The price table at `path`; ValueError naming the file and field when it is unusable."""
    path = Path(path)
    try:
        doc = _PriceFile.model_validate(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the model price table: {exc}") from None
    except ValidationError as exc:
        raise ValueError(f"{path}: {field_errors(exc)}") from None
    return Prices(doc.models, source=path.name if path == PRICES_PATH else str(path))


@lru_cache(maxsize=1)
def shipped_prices() -> Prices:
    """The shipped table, read once per process on first use (never at import)."""
    return load_prices()
