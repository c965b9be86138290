"""Where a platform partition's inventory comes from, as ONE resource for every platform.

The inventory asset asks this resource for the partition's platform and gets the same contract
rows whether they come from a live connector or from the sample estate / CLI exports
(QLRF_SOURCE_<PLATFORM>, decided by the estate resource). Each live platform has an optional nested
config resource (``aws``, ``azure``, ``gcp``, ``vsphere``): unset, it is built with every field
unset, i.e. configured from the environment when the run calls it. pipelines/definitions.py binds
the secret fields with ``EnvVar`` only for the variables that exist when the definitions load, so
an unconfigured platform never fails a run it is not part of.

A registered platform with no nested resource here (a fifth platform's first version) is still
discoverable: its connector module, named in its registry record, is configured from the
environment (``config_from_env``) like ``qlrf discover`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Protocol

from dagster import ConfigurableResource

from qlrf.inventory.connectors import discover_from_env
from qlrf.inventory.contract import Normalised
from qlrf.inventory.tags import TagMapping
from qlrf.platforms import REGISTRY, Registry
from resources.aws import AwsResource
from resources.azure import AzureResource
from resources.estate import EstateResource
from resources.gcp import GcpResource
from resources.vsphere import VsphereResource

Progress = Callable[[str], None]

# The typed config resource of each platform that has one, keyed by its registry name.
LIVE_RESOURCES: dict[str, type[ConfigurableResource]] = {
    cls.platform: cls for cls in (AwsResource, AzureResource, GcpResource, VsphereResource)
}


class LiveConnector(Protocol):
    def discover(self, discovered_at: datetime, mapping: TagMapping, progress: Progress | None = None) -> Normalised: ...


class EnvConnector:
    """A registered platform's connector module, configured from the environment at call time."""

    def __init__(self, platform: str, registry: Registry = REGISTRY) -> None:
        self.platform = platform
        self.registry = registry

    def discover(self, discovered_at: datetime, mapping: TagMapping, progress: Progress | None = None) -> Normalised:
        return discover_from_env(self.platform, mapping, discovered_at, progress, registry=self.registry)


class DiscoveryResource(ConfigurableResource):
    """Live connector or sample/export files for a platform partition; the rows are the same contract."""

    aws: AwsResource | None = None
    azure: AzureResource | None = None
    gcp: GcpResource | None = None
    vsphere: VsphereResource | None = None

    def connector(self, platform: str, registry: Registry = REGISTRY) -> LiveConnector:
        """The platform's live connector: its nested config resource, a default one, or its module."""
        record = registry.get(platform)  # an unknown platform fails here, naming the known ones
        if platform not in LIVE_RESOURCES:
            return EnvConnector(record.name, registry)
        return getattr(self, platform) or LIVE_RESOURCES[platform]()

    def discover(
        self,
        platform: str,
        *,
        day: date,
        discovered_at: datetime,
        estate: EstateResource,
        progress: Progress | None = None,
        registry: Registry = REGISTRY,
    ) -> Normalised:
        """QLRF_SOURCE_<PLATFORM>=live: the live connector; otherwise the estate's sample or export files."""
        if estate.source(platform) != "live":
            return estate.inventory(day, platform, discovered_at)
        if progress:
            progress(f"{platform}: live discovery")
        return self.connector(platform, registry).discover(discovered_at, estate.mapping(), progress=progress)
