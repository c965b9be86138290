"""Live GCP discovery as a Dagster resource (qlrf.inventory.connectors.gcp underneath).

Every field is optional: a field left unset is read from the environment when discover() runs
(qlrf.inventory.connectors.gcp.config_from_env), never at import. Credentials come from google-auth's standard
chain; it is nested in the one discovery resource (resources/discovery.py), and
pipelines/definitions.py binds ``credentials_file`` with ``EnvVar("GOOGLE_APPLICATION_CREDENTIALS")``
when that variable is set.

Unset, google.auth.default() finds GOOGLE_APPLICATION_CREDENTIALS itself, then gcloud's application
default credentials, workload identity or the metadata server.
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


class GcpResource(ConfigurableResource):
    """Instances, their boot images, managed instance groups and snapshots across projects."""

    platform: ClassVar[str] = "gcp"  # its registry record (qlrf/platforms.py)

    projects: list[str] | None = Field(default=None, description="Default: QLRF_GCP_PROJECTS")
    credentials_file: str | None = Field(
        default=None, description="Key / external-account file; default: GOOGLE_APPLICATION_CREDENTIALS"
    )
    endpoint: str | None = Field(default=None, description="Compute API endpoint; default: QLRF_GCP_ENDPOINT")
    max_workers: int | None = Field(default=None, description="Default: QLRF_GCP_MAX_WORKERS or 8")
    page_size: int | None = Field(default=None, description="maxResults per page (<= 500); default 500")

    def connector_config(self):
        """The environment's configuration with this resource's set fields on top (read now, not at import)."""
        from qlrf.inventory.connectors.gcp import config_from_env

        return config_from_env(
            overlay(
                {
                    "QLRF_GCP_PROJECTS": self.projects,
                    "GOOGLE_APPLICATION_CREDENTIALS": self.credentials_file,
                    "QLRF_GCP_ENDPOINT": self.endpoint,
                    "QLRF_GCP_MAX_WORKERS": self.max_workers,
                    "QLRF_GCP_PAGE_SIZE": self.page_size,
                }
            )
        )

    def discover(
        self, discovered_at: datetime, mapping: TagMapping, progress: Callable[[str], None] | None = None
    ) -> Normalised:
        from qlrf.inventory.connectors.gcp import discover

        return discover(
            self.connector_config(), mapping=mapping, discovered_at=discovered_at, progress=progress
        )
