"""Live AWS discovery as a Dagster resource (a thin shell over qlrf.inventory.connectors.aws).

Every field is optional: unset (None) means "read the QLRF_AWS_* variable when a run calls
`discover`", never at import or definition time, so the code location loads without credentials.
Credentials are never a field: boto3's default chain supplies them (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE + shared files, SSO, container or instance
role) and the roles in `role_arns` are assumed from it.

It is nested in the one discovery resource (resources/discovery.py); a deployment that wants fields
pinned binds them with `EnvVar` in one place, pipelines/definitions.py, e.g.:

    from dagster import EnvVar
    DiscoveryResource(aws=AwsResource(
        role_arns=EnvVar("QLRF_AWS_ROLE_ARNS"),        # comma list of role ARNs to assume
        regions=EnvVar("QLRF_AWS_REGIONS"),            # comma list; unset = every enabled region
        external_id=EnvVar("QLRF_AWS_EXTERNAL_ID"),    # sts:ExternalId, if the roles demand one
    ))

or leaves them all unset (`AwsResource()`), which reads the same variables at run time plus
QLRF_AWS_MAX_WORKERS, QLRF_AWS_MAX_ATTEMPTS, QLRF_AWS_INCLUDE_DEFAULT, QLRF_AWS_SNAPSHOT_LISTING.
The comma-list fields are strings (not lists) precisely so that a single `EnvVar` can bind them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from dagster import ConfigurableResource
from pydantic import Field

from qlrf.envparse import overlay
from qlrf.inventory.connectors.aws import AwsConfig, config_from_env, discover
from qlrf.inventory.contract import Normalised
from qlrf.inventory.tags import TagMapping


class AwsResource(ConfigurableResource):
    """EC2 instances, their AMIs, Auto Scaling groups and newest EBS snapshots across accounts and regions."""

    platform: ClassVar[str] = "aws"  # its registry record (qlrf/platforms.py)

    role_arns: str | None = Field(
        default=None, description="Comma list of role ARNs; default QLRF_AWS_ROLE_ARNS"
    )
    regions: str | None = Field(
        default=None, description="Comma list of regions; default QLRF_AWS_REGIONS, else every enabled region"
    )
    include_default: bool | None = Field(
        default=None,
        description="Also discover the default chain's own account; default QLRF_AWS_INCLUDE_DEFAULT",
    )
    external_id: str | None = Field(default=None, description="sts:ExternalId; default QLRF_AWS_EXTERNAL_ID")
    max_workers: int | None = Field(
        default=None, description="Concurrent scopes; default QLRF_AWS_MAX_WORKERS or 16"
    )
    max_attempts: int | None = Field(default=None, description="Adaptive-retry attempts; default 10")
    snapshot_listing: str | None = Field(default=None, description="owned | by_volume; default owned")
    endpoint_url: str | None = Field(
        default=None, description="Tests only; boto3 also honours AWS_ENDPOINT_URL"
    )

    def config(self) -> AwsConfig:
        """The connector configuration: fields that are set win over the environment (envparse.overlay)."""
        config = config_from_env(
            overlay(
                {
                    "QLRF_AWS_ROLE_ARNS": self.role_arns,
                    "QLRF_AWS_REGIONS": self.regions,
                    "QLRF_AWS_INCLUDE_DEFAULT": self.include_default,
                    "QLRF_AWS_EXTERNAL_ID": self.external_id,
                    "QLRF_AWS_MAX_WORKERS": self.max_workers,
                    "QLRF_AWS_MAX_ATTEMPTS": self.max_attempts,
                    "QLRF_AWS_SNAPSHOT_LISTING": self.snapshot_listing,
                }
            )
        )
        if self.endpoint_url is not None:  # boto3 reads AWS_ENDPOINT_URL itself; this pins one for a test
            config.endpoint_url = self.endpoint_url
        return config

    def discover(
        self,
        discovered_at: datetime,
        mapping: TagMapping,
        progress: Callable[[str], None] | None = None,
    ) -> Normalised:
        """Rows for every account x region; failed scopes are in the result, not raised."""
        return discover(self.config(), mapping=mapping, discovered_at=discovered_at, progress=progress)
