"""The platform registry: one declarative, frozen record per platform (Cloud Custodian's provider idea).

Everything that differs between AWS, Azure, GCP and vSphere *as data* lives here: names, where the
normaliser and the live connector are, which remediation driver kinds exist, which discovery facts
land in which warehouse table, what a scope is called and what an image reference looks like.
Code that enumerates platforms (the contract's PLATFORMS, partitions, settings, the inventory asset,
the AI summary's schema) reads this registry, so adding a fifth platform is one record here plus its
modules (normaliser, connector, driver), not a hunt for ``"aws", "azure"`` literals.

Records hold dotted paths, never modules: importing this module imports nothing heavy, and a
connector's SDK is paid for only by the run that resolves it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, ModuleType
from typing import Any


def resolve(path: str) -> Any:
    """``package.module:attribute`` (or just ``package.module``) imported now, on first use."""
    module_name, _, attribute = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


@dataclass(frozen=True)
class Platform:
    """What the rest of the code needs to know about one platform, as data."""

    name: str  # the partition key and the `platform` column value
    display_name: str
    normaliser: str  # "module:function" turning raw export JSON into contract rows
    connector: str  # module with config_from_env(env) and discover(config, ...)
    config_type: str  # the connector's configuration class, in that module
    driver_kinds: tuple[str, ...]  # remediation driver kinds (qlrf/remediation/drivers/<name>.py)
    driver: str = ""  # "module:Class" of the remediation driver
    group_kind: str | None = None  # the scaling-group target kind a plan names (asg, vmss, mig), if any
    group_rollback: str | None = None  # rollback strategy for a plan over scaling groups
    standalone_rollback: str = "previous_image"  # rollback strategy for a plan over standalone VMs
    fact_tables: Mapping[str, str] = field(default_factory=dict, hash=False)  # facts key -> warehouse table
    scope_noun: str = "scope"  # what one unit of discovery is called in messages (account/region, project...)
    image_ref_kind: str = "image reference"  # what `image_ref` holds on this platform

    def __post_init__(self) -> None:
        # Frozen all the way down: a shared record must not be edited by one caller behind another's back.
        object.__setattr__(self, "fact_tables", MappingProxyType(dict(self.fact_tables)))

    def load_normaliser(self) -> Callable[..., Any]:
        return resolve(self.normaliser)

    def load_connector(self) -> ModuleType:
        return resolve(self.connector)

    def load_config_type(self) -> type:
        return getattr(self.load_connector(), self.config_type)

    def load_driver(self) -> type:
        if not self.driver:
            raise ValueError(f"no execution driver for platform {self.name!r}")
        return resolve(self.driver)


class Registry:
    """An ordered set of platform records; order is the order of partitions, reports and tables."""

    def __init__(self, records: Iterable[Platform] = ()) -> None:
        self._records: dict[str, Platform] = {}
        for record in records:
            self.register(record)

    def register(self, record: Platform) -> Platform:
        if record.name in self._records:
            raise ValueError(f"platform {record.name!r} is already registered")
        self._records[record.name] = record
        return record

    def extended(self, *records: Platform) -> Registry:
        """A copy with more records: how a test (or a plug-in) adds a platform without touching this one."""
        return Registry([*self, *records])

    def get(self, name: str) -> Platform:
        try:
            return self._records[name]
        except KeyError:
            raise ValueError(f"unknown platform {name!r}; expected one of {', '.join(self.names())}") from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._records)

    def fact_tables(self) -> dict[str, str]:
        """Facts key -> warehouse table over every platform (the tables every partition writes)."""
        return {key: table for record in self for key, table in record.fact_tables.items()}

    def __iter__(self) -> Iterator[Platform]:
        return iter(self._records.values())

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __len__(self) -> int:
        return len(self._records)


_IMAGES_AND_GROUPS = {"images": "cloud_images", "scaling_groups": "scaling_groups"}

REGISTRY = Registry(
    [
        Platform(
            name="aws",
            display_name="AWS",
            normaliser="qlrf.inventory.normalize.aws:normalise",
            connector="qlrf.inventory.connectors.aws",
            config_type="AwsConfig",
            driver_kinds=("asg", "instance"),
            driver="qlrf.remediation.drivers.aws:AwsDriver",
            group_kind="asg",
            group_rollback="previous_launch_template_version",
            fact_tables=_IMAGES_AND_GROUPS,
            scope_noun="account/region",
            image_ref_kind="AMI id",
        ),
        Platform(
            name="azure",
            display_name="Azure",
            normaliser="qlrf.inventory.normalize.azure:normalise",
            connector="qlrf.inventory.connectors.azure",
            config_type="AzureConfig",
            driver_kinds=("vmss", "vm"),
            driver="qlrf.remediation.drivers.azure_vm:AzurePlanDriver",
            group_kind="vmss",
            group_rollback="previous_image",
            fact_tables=_IMAGES_AND_GROUPS,
            scope_noun="subscription",
            image_ref_kind="image reference (marketplace URN) or gallery image-version id",
        ),
        Platform(
            name="gcp",
            display_name="Google Cloud",
            normaliser="qlrf.inventory.normalize.gcp:normalise",
            connector="qlrf.inventory.connectors.gcp",
            config_type="GcpConfig",
            driver_kinds=("mig", "regional_mig", "instance"),
            driver="qlrf.remediation.drivers.gcp_instance:GcpPlanDriver",
            group_kind="mig",
            group_rollback="previous_instance_template",
            fact_tables=_IMAGES_AND_GROUPS,
            scope_noun="project",
            image_ref_kind="image self-link",
        ),
        Platform(
            name="vsphere",
            display_name="vSphere",
            normaliser="qlrf.inventory.normalize.vsphere:normalise",
            connector="qlrf.inventory.connectors.vsphere",
            config_type="VsphereConfig",
            driver_kinds=("clone_swap", "drs_clone_swap"),
            driver="qlrf.remediation.drivers.vsphere_drs:VsphereDrsDriver",
            standalone_rollback="restore_clone",
            fact_tables={"templates": "cloud_images"},
            scope_noun="vCenter",
            image_ref_kind="template name",
        ),
    ]
)

PLATFORMS: tuple[str, ...] = REGISTRY.names()
# Platforms whose plans can target scaling groups (the plan contract's GroupTarget.platform).
GROUP_PLATFORMS: tuple[str, ...] = tuple(p.name for p in REGISTRY if p.group_kind)
