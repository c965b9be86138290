"""The relay: outbox -> broker, in order per subject, delivered only once acked.

Each pass takes the oldest undelivered events, publishes them (the transport pipelines publishes on
one connection, never sending an event before its subject's predecessor is acked, and returns what
was acked) and marks exactly those delivered. A broker that is down
raises :class:`~qlrf.events.transports.nats.TransportUnavailable`: only what was acked is
marked, the events wait, and the next pass re-sends them with the same ``Nats-Msg-Id`` (the broker
drops any copy it already stored). The lag (age of the oldest waiting event) is in ``Outbox.status``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from qlrf.events.contract import Event
from qlrf.events.outbox import Outbox
from qlrf.events.transports.nats import TransportUnavailable
from qlrf.tenancy.scope import acts_for_every_org


class Transport(Protocol):
    def publish(self, rows: list[tuple[int, Event]]) -> list[tuple[int, int]]: ...


@dataclass
class RelayResult:
    delivered: int = 0
    passes: int = 0
    errors: list[str] = field(default_factory=list)


class Relay:
    def __init__(self, outbox: Outbox, transport: Transport, batch: int = 5000,
                 log: Callable[[str], None] = lambda _m: None):
        self.outbox, self.transport, self.batch, self.log = outbox, transport, batch, log

    @acts_for_every_org("event_relay")  # the relay publishes every organisation's events
    def drain_once(self) -> RelayResult:
        """Publish every waiting event until the outbox is empty or the broker fails (then stop)."""
        result = RelayResult()
        while True:
            rows = self.outbox.pending(self.batch)
            if not rows:
                return result
            result.passes += 1
            try:
                acked = self.transport.publish([(r.seq, r.event) for r in rows])
            except TransportUnavailable as exc:
                self.outbox.mark_delivered(exc.acked)
                result.delivered += len(exc.acked)
                done = {seq for seq, _ in exc.acked}
                self.outbox.note_attempt([r.seq for r in rows if r.seq not in done])
                result.errors.append(str(exc))
                self.log(f"relay: broker unavailable, {len(rows) - len(exc.acked)} event(s) wait: {exc}")
                return result
            self.outbox.mark_delivered(acked)
            result.delivered += len(acked)

    def run(self, interval: float = 1.0, stop: Callable[[], bool] = lambda: False,
            sleep: Callable[[float], None] = time.sleep) -> RelayResult:
        """Drain, sleep, repeat until `stop()` (the long-running ``qlrf events relay``)."""
        total = RelayResult()
        while not stop():
            once = self.drain_once()
            total.delivered += once.delivered
            total.passes += once.passes
            total.errors.extend(once.errors[-1:])
            if once.delivered:
                self.log(f"relay: delivered {once.delivered} event(s)")
            sleep(interval)
        return total
