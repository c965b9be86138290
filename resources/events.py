"""The event bridge as a Dagster resource: broker settings and the trusted ChatOps sources.

Unset fields resolve from QLRF_NATS_URL / QLRF_EVENTS_* when a tick calls the resource (qlrf/events/settings.py).
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from qlrf.envparse import overlay
from qlrf.events.settings import EventSettings


class EventsResource(ConfigurableResource):
    """Where events go (outbound stream) and come from (inbound stream)."""

    nats_url: str | None = Field(default=None, description="NATS URL; default QLRF_NATS_URL or nats://127.0.0.1:4222")
    inbound_stream: str | None = Field(default=None, description="Inbound stream; default QLRF_EVENTS_INBOUND_STREAM")
    inbound_prefix: str | None = Field(default=None, description="Inbound subject prefix; default QLRF_EVENTS_INBOUND_PREFIX")
    trusted_sources: str | None = Field(
        default=None, description="source=identity,... trusted for task.approve; default QLRF_EVENTS_TRUSTED_SOURCES")

    def settings(self) -> EventSettings:
        return EventSettings.from_env(overlay({
            "QLRF_NATS_URL": self.nats_url, "QLRF_EVENTS_INBOUND_STREAM": self.inbound_stream,
            "QLRF_EVENTS_INBOUND_PREFIX": self.inbound_prefix, "QLRF_EVENTS_TRUSTED_SOURCES": self.trusted_sources,
        }))
