"""Event bridge configuration, read when called (never at import) through qlrf.envparse.

=============================  ==============================================================
variable                       meaning (default)
=============================  ==============================================================
QLRF_NATS_URL                  the broker (``nats://127.0.0.1:4222``)
QLRF_EVENTS_STREAM             outbound stream (``RF_EVENTS``), captures ``<prefix>.>``
QLRF_EVENTS_PREFIX             outbound subject prefix (``rf.events``): ``rf.events.task.approved``
QLRF_EVENTS_INBOUND_STREAM     inbound stream (``RF_INBOUND``)
QLRF_EVENTS_INBOUND_PREFIX     inbound subject prefix (``rf.inbound``)
QLRF_EVENTS_TRANSPORT          ``nats`` (default) or ``kafka`` for the outbound relay
QLRF_KAFKA_BOOTSTRAP           Kafka bootstrap servers (``127.0.0.1:9092``); the topic is the prefix
QLRF_EVENTS_TRUSTED_SOURCES    ``source=identity,...``: CloudEvents sources whose ``task.approve``
                               events approve as that identity (unset: none is trusted)
=============================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from qlrf.envparse import choice, environ, text
from qlrf.events.inbound import ENV_TRUSTED, parse_trusted
from qlrf.events.transports.kafka import KafkaTransport
from qlrf.events.transports.nats import NatsTransport


@dataclass(frozen=True)
class EventSettings:
    nats_url: str
    stream: str
    prefix: str
    inbound_stream: str
    inbound_prefix: str
    trusted: dict
    transport: str = "nats"
    kafka_bootstrap: str = "127.0.0.1:9092"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EventSettings:
        env = environ(env)
        return cls(
            nats_url=text(env, "QLRF_NATS_URL", "nats://127.0.0.1:4222"),
            stream=text(env, "QLRF_EVENTS_STREAM", "RF_EVENTS"),
            prefix=text(env, "QLRF_EVENTS_PREFIX", "rf.events"),
            inbound_stream=text(env, "QLRF_EVENTS_INBOUND_STREAM", "RF_INBOUND"),
            inbound_prefix=text(env, "QLRF_EVENTS_INBOUND_PREFIX", "rf.inbound"),
            trusted=parse_trusted(text(env, ENV_TRUSTED)),
            transport=choice(env, "QLRF_EVENTS_TRANSPORT", ("nats", "kafka"), "nats"),
            kafka_bootstrap=text(env, "QLRF_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        )

    def outbound(self) -> NatsTransport | KafkaTransport:
        """The relay's transport: JetStream, or Kafka (topic = the prefix) with QLRF_EVENTS_TRANSPORT=kafka."""
        if self.transport == "kafka":
            return KafkaTransport(self.kafka_bootstrap, self.prefix)
        return NatsTransport(self.nats_url, self.stream, self.prefix)

    def inbound(self) -> NatsTransport:
        return NatsTransport(self.nats_url, self.inbound_stream, self.inbound_prefix)
