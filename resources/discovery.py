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

from qlrf.inventory import scopes as plan
from qlrf.inventory.connectors import connector as connector_module
from qlrf.inventory.connectors import discover_from_env
from qlrf.inventory.contract import Normalised
from qlrf.inventory.scopes import Scope, ScopeBatch
from qlrf.inventory.sources import manifest_files, normalise_file_scope
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

    # ----------------------------------------------------------------------------------------------
    # Fan-out: the same discovery split into scope batches (qlrf/inventory/scopes.py), one step each
    # ----------------------------------------------------------------------------------------------

    def live_config(self, platform: str) -> object | None:
        """The live connector's configuration (read now), or None for a platform with no typed resource."""
        if platform not in LIVE_RESOURCES:
            return None
        resource = self.connector(platform)
        return resource.connector_config() if hasattr(resource, "connector_config") else resource.config()

    def plan(
        self, platform: str, *, day: date, discovered_at: datetime, estate: EstateResource, per_step: int
    ) -> list[ScopeBatch]:
        """The partition's scopes in batches of at most `per_step` (0: one batch). Every batch carries the
        same source, manifest directory and discovery time, so the steps agree with each other."""
        source = estate.source(platform)
        directory = None
        if source == "live":
            scopes = plan.live_scopes(platform, self.live_config(platform))
        else:
            manifest = estate.manifest_dir(day, platform)
            if manifest is None:  # plain export files: normalised together, as one scope
                scopes = [Scope(platform, "whole", "*")]
            else:
                directory = str(manifest)
                # A manifest listing no files for the platform: one whole scope, which finds nothing
                # and so fails the partition with "no VMs discovered", as it always did.
                scopes = plan.manifest_scopes(platform, manifest_files(manifest, platform)) or [
                    Scope(platform, "whole", "*")
                ]
        return plan.batches(scopes, per_step, source=source, discovered_at=discovered_at, directory=directory)

    def discover_batch(
        self,
        batch: ScopeBatch,
        *,
        day: date,
        estate: EstateResource,
        progress: Progress | None = None,
        registry: Registry = REGISTRY,
    ) -> Normalised:
        """One batch's rows: the live connector narrowed to the batch's scopes, or its manifest files.
        Raises what the connector raises; the caller records a raising batch as failed scopes."""
        whole = [s for s in batch.scopes if s.kind == "whole"]
        if whole:  # a platform or source with no scope unit: today's one call
            return self.discover(batch.platform, day=day, discovered_at=batch.discovered_at, estate=estate,
                                 progress=progress, registry=registry)
        mapping = estate.mapping()
        if batch.source != "live":
            out = Normalised()
            for scope in batch.scopes:
                out.extend(normalise_file_scope(batch.directory, scope, mapping, batch.discovered_at))
            return out
        config = plan.narrow(batch.platform, self.live_config(batch.platform), batch.scopes)
        if progress:
            progress(f"{batch.platform}: live discovery of {len(batch.scopes)} scopes ({batch.key})")
        module = connector_module(batch.platform, registry)
        return module.discover(config, mapping=mapping, discovered_at=batch.discovered_at, progress=progress)
