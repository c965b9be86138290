"""Live Azure discovery as a Dagster resource (qlrf.inventory.connectors.azure underneath).

Every field is optional: a field left unset is read from the environment when discover() runs
(qlrf.inventory.connectors.azure.config_from_env), never at import. It is nested in the one
discovery resource (resources/discovery.py); pipelines/definitions.py binds ``client_secret`` with
``EnvVar("AZURE_CLIENT_SECRET")`` when that variable is set, so Dagster shows its name, not its value.

Without a client secret the credential is DefaultAzureCredential (workload or managed identity, Azure
CLI...). Never put a literal secret in the resource config: it would show in the Dagster UI.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from qlrf.envparse import overlay
from qlrf.inventory.contract import Normalised
from qlrf.inventory.tags import TagMapping


class AzureResource(ConfigurableResource):
    """VMs, scale sets, gallery image versions and snapshots across subscriptions."""

    platform: ClassVar[str] = "azure"  # its registry record (qlrf/platforms.py)

    subscriptions: list[str] | None = Field(default=None, description="Default: QLRF_AZURE_SUBSCRIPTIONS")
    tenant_id: str | None = Field(default=None, description="Default: AZURE_TENANT_ID")
    client_id: str | None = Field(default=None, description="Default: AZURE_CLIENT_ID")
    client_secret: str | None = Field(default=None, description="Bind with EnvVar('AZURE_CLIENT_SECRET')")
    endpoint: str | None = Field(
        default=None, description="ARM base URL; default: QLRF_AZURE_ENDPOINT or public"
    )
    authority: str | None = Field(default=None, description="Entra ID host; default: AZURE_AUTHORITY_HOST")
    ca_bundle: str | None = Field(
        default=None, description="CA bundle for TLS; default: QLRF_AZURE_CA_BUNDLE"
    )
    max_workers: int | None = Field(default=None, description="Default: QLRF_AZURE_MAX_WORKERS or 8")
    retry_total: int | None = Field(default=None, description="Default: QLRF_AZURE_RETRY_TOTAL or 10")

    def connector_config(self):
        """The environment's configuration with this resource's set fields on top (read now, not at import)."""
        from qlrf.inventory.connectors.azure import config_from_env

        return config_from_env(
            overlay(
                {
                    "QLRF_AZURE_SUBSCRIPTIONS": self.subscriptions,
                    "AZURE_TENANT_ID": self.tenant_id,
                    "AZURE_CLIENT_ID": self.client_id,
                    "AZURE_CLIENT_SECRET": self.client_secret,
                    "QLRF_AZURE_ENDPOINT": self.endpoint,
                    "AZURE_AUTHORITY_HOST": self.authority,
                    "QLRF_AZURE_CA_BUNDLE": self.ca_bundle,
                    "QLRF_AZURE_MAX_WORKERS": self.max_workers,
                    "QLRF_AZURE_RETRY_TOTAL": self.retry_total,
                }
            )
        )

    def discover(
        self, discovered_at: datetime, mapping: TagMapping, progress: Callable[[str], None] | None = None
    ) -> Normalised:
        from qlrf.inventory.connectors.azure import discover

        return discover(
            self.connector_config(), mapping=mapping, discovered_at=discovered_at, progress=progress
        )
