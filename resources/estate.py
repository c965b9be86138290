"""Inventory that is not discovered live: the generated sample estate or a directory of CLI exports."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from qlrf.inventory.contract import Normalised
from qlrf.inventory.sample import ensure_estate
from qlrf.inventory.sources import export_inventory, sample_inventory
from qlrf.inventory.tags import TagMapping
from qlrf.settings import Settings


class EstateResource(ConfigurableResource):
    """`sources` maps platform -> 'sample' | 'files:<dir>' (live connectors are their own resources)."""

    estate_dir: str | None = Field(default=None, description="Sample estate root; default QLRF_ESTATE_DIR")
    seed: int | None = None
    tag_mapping: str | None = None
    golden_dir: str | None = Field(default=None, description="Golden-image contracts; default: the sample's")
    sources: dict[str, str] | None = None

    def _settings(self) -> Settings:
        return Settings.from_env()

    def mapping(self) -> TagMapping:
        return TagMapping.from_file(self.tag_mapping or self._settings().tag_mapping)

    def _estate_root(self) -> Path:
        return Path(self.estate_dir) if self.estate_dir else self._settings().estate_dir

    def _seed(self) -> int:
        return self.seed if self.seed is not None else self._settings().sample_seed

    def source(self, platform: str) -> str:
        return (self.sources or self._settings().sources).get(platform, "sample")

    def inventory(self, day: date, platform: str, discovered_at: datetime) -> Normalised:
        source = self.source(platform)
        if source.startswith("files:"):
            return export_inventory(Path(source.removeprefix("files:")), platform, self.mapping(), discovered_at)
        if source != "sample":
            raise ValueError(f"platform {platform}: source {source!r} is not served by the estate resource")
        return sample_inventory(self._estate_root(), day, platform, self.mapping(), discovered_at, self._seed())

    def contracts_dir(self, day: date) -> Path:
        golden = self.golden_dir or self._settings().golden_dir
        if golden:
            return Path(golden)
        return ensure_estate(self._estate_root(), day, seed=self._seed()) / "golden"
