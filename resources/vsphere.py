"""vSphere live discovery (pyVmomi) as a Dagster resource; the work is in qlrf.inventory.connectors.vsphere.

Every field is optional: unset (None) means "from the environment when a run calls discover()"
(QLRF_VSPHERE_HOSTS, QLRF_VSPHERE_USER, QLRF_VSPHERE_PASSWORD, QLRF_VSPHERE_PROTOCOL,
QLRF_VSPHERE_INSECURE, QLRF_VSPHERE_CA_FILE, QLRF_VSPHERE_PAGE_SIZE, QLRF_VSPHERE_MAX_WORKERS), so
nothing is read at import. It is nested in the one discovery resource (resources/discovery.py);
pipelines/definitions.py binds the password with ``EnvVar("QLRF_VSPHERE_PASSWORD")`` when that
variable is set, so Dagster never stores or shows it.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from qlrf.envparse import overlay
from qlrf.inventory.connectors.vsphere import (
    Progress,
    VcenterStats,
    VsphereConfig,
    config_from_env,
    discover,
)
from qlrf.inventory.contract import Normalised
from qlrf.inventory.tags import TagMapping


class VsphereResource(ConfigurableResource):
    """vCenters to discover; None fields fall back to the QLRF_VSPHERE_* environment at call time."""

    platform: ClassVar[str] = "vsphere"  # its registry record (qlrf/platforms.py)

    hosts: list[str] | None = Field(
        default=None,
        description="vCenters as host[:port] or http(s)://host[:port]; default QLRF_VSPHERE_HOSTS",
    )
    user: str | None = Field(default=None, description="Login for every vCenter; default QLRF_VSPHERE_USER")
    password: str | None = Field(
        default=None,
        description='Bind with EnvVar("QLRF_VSPHERE_PASSWORD"); default: that variable. Never logged.',
    )
    protocol: str | None = Field(default=None, description="https|http for hosts without a scheme")
    verify_tls: bool | None = Field(default=None, description="Default: true unless QLRF_VSPHERE_INSECURE=1")
    ca_file: str | None = Field(default=None, description="CA bundle (PEM); default QLRF_VSPHERE_CA_FILE")
    page_size: int | None = Field(default=None, description="Objects per property-collector page (1000)")
    max_workers: int | None = Field(default=None, description="vCenters discovered at once (8)")

    def config(self) -> VsphereConfig:
        """The environment's configuration with this resource's set fields on top (envparse.overlay)."""
        return config_from_env(
            overlay(
                {
                    "QLRF_VSPHERE_HOSTS": self.hosts,
                    "QLRF_VSPHERE_USER": self.user,
                    "QLRF_VSPHERE_PASSWORD": self.password,
                    "QLRF_VSPHERE_PROTOCOL": self.protocol,
                    "QLRF_VSPHERE_INSECURE": None if self.verify_tls is None else not self.verify_tls,
                    "QLRF_VSPHERE_CA_FILE": self.ca_file,
                    "QLRF_VSPHERE_PAGE_SIZE": self.page_size,
                    "QLRF_VSPHERE_MAX_WORKERS": self.max_workers,
                }
            )
        )

    def discover(
        self,
        discovered_at: datetime,
        mapping: TagMapping,
        progress: Progress | None = None,
        stats: list[VcenterStats] | None = None,
    ) -> Normalised:
        """VMs, snapshots, facts["templates"] and failed_scopes of every vCenter; never raises for one vCenter."""
        return discover(
            self.config(), mapping=mapping, discovered_at=discovered_at, progress=progress, stats=stats
        )
