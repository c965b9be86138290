"""Inventory that is not discovered live: the generated sample estate or a directory of CLI exports."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from qlrf.envparse import overlay
from qlrf.inventory.contract import Normalised
from qlrf.inventory.sample import ensure_estate
from qlrf.inventory.sources import export_inventory, sample_inventory
from qlrf.inventory.tags import TagMapping
from qlrf.platforms import PLATFORMS
from qlrf.settings import Settings, source_variable


class EstateResource(ConfigurableResource):
    """`sources` maps platform -> 'sample' | 'live' | 'files:<dir>' (live connectors: resources/discovery.py)."""

    estate_dir: str | None = Field(default=None, description="Sample estate root; default QLRF_ESTATE_DIR")
    seed: int | None = None
    tag_mapping: str | None = None
    golden_dir: str | None = Field(default=None, description="Golden-image contracts; default: the sample's")
    sources: dict[str, str] | None = None

    def _settings(self) -> Settings:
        """The environment with this resource's set fields on top (envparse.overlay), read now."""
        fields: dict[str, object] = {
            "QLRF_ESTATE_DIR": self.estate_dir,
            "QLRF_SAMPLE_SEED": self.seed,
            "QLRF_TAG_MAPPING": self.tag_mapping,
            "QLRF_GOLDEN_DIR": self.golden_dir,
        }
        if self.sources is not None:  # a sources map replaces every platform's source, not just those it names
            fields.update({source_variable(p): self.sources.get(p, "sample") for p in PLATFORMS})
        return Settings.from_env(overlay(fields))

    def mapping(self) -> TagMapping:
        return TagMapping.from_file(self._settings().tag_mapping)

    def source(self, platform: str) -> str:
        return self._settings().sources.get(platform, "sample")

    def inventory(self, day: date, platform: str, discovered_at: datetime) -> Normalised:
        source = self.source(platform)
        if source.startswith("files:"):
            return export_inventory(Path(source.removeprefix("files:")), platform, self.mapping(), discovered_at)
        if source != "sample":
            raise ValueError(f"platform {platform}: source {source!r} is not served by the estate resource")
        settings = self._settings()
        return sample_inventory(settings.estate_dir, day, platform, self.mapping(), discovered_at, settings.sample_seed)

    def manifest_dir(self, day: date, platform: str) -> Path | None:
        """Where the platform's manifest of files lives (the sample's day directory, or an export
        directory that has one); None for an export directory of plain *.json files."""
        source = self.source(platform)
        if source.startswith("files:"):
            directory = Path(source.removeprefix("files:"))
            return directory if (directory / "manifest.json").exists() else None
        if source != "sample":
            raise ValueError(f"platform {platform}: source {source!r} is not served by the estate resource")
        settings = self._settings()
        return ensure_estate(settings.estate_dir, day, seed=settings.sample_seed)

    def golden_dir_setting(self) -> Path | None:
        """The configured contracts directory (field, else QLRF_GOLDEN_DIR); None means the sample's."""
        return self._settings().golden_dir

    def contracts_dir(self, day: date) -> Path:
        settings = self._settings()
        if settings.golden_dir:
            return settings.golden_dir
        return ensure_estate(settings.estate_dir, day, seed=settings.sample_seed) / "golden"
