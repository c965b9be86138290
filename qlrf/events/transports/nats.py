"""NATS JetStream transport: one stream per namespace, ``Nats-Msg-Id`` = CloudEvents id.

Subjects are ``<prefix>.<short type>`` (``rf.events.task.approved``); the stream (``RF_EVENTS`` by
default) captures ``<prefix>.>``. JetStream drops a publish whose ``Nats-Msg-Id`` it has seen within
the duplicate window and answers with the first copy's sequence (``duplicate=True``), so a relay that
re-sends after a lost ack stores nothing twice. nats-py has no msg-id argument: the header is set here.

Calls are synchronous (the relay, CLI and sensor are): each opens a connection, does its work and
closes; connection failures raise :class:`TransportUnavailable` with the acks gathered so far.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from qlrf.events.contract import CONTENT_TYPE, Event


class TransportUnavailable(ConnectionError):
    """The broker cannot be reached (or stopped acking); `acked` holds what it did ack first."""

    def __init__(self, message: str, acked: list[tuple[int, int]] | None = None):
        super().__init__(message)
        self.acked = acked or []


def _acked(rows: Sequence[tuple[int, Event]], acks: dict[int, int]) -> list[tuple[int, int]]:
    """``(outbox seq, stream seq)`` of every acked event, in outbox order: each was published only
    after its subject's earlier events in the batch were acked (see :meth:`NatsTransport._publish`),
    so all of them may be marked delivered."""
    return [(seq, acks[index]) for index, (seq, _) in enumerate(rows) if index in acks]


def rounds(rows: Sequence[tuple[int, Event]]) -> list[list[int]]:
    """Row indexes in publishing rounds: at most one event per CloudEvents subject per round, in outbox
    order, so an event goes out only once its subject's predecessor is acked."""
    out: list[list[int]] = []
    depth: dict[str, int] = {}
    for index, (_, ev) in enumerate(rows):
        level = depth.get(ev.subject, 0)
        depth[ev.subject] = level + 1
        if level == len(out):
            out.append([])
        out[level].append(index)
    return out


@dataclass(frozen=True)
class NatsTransport:
    url: str = "nats://127.0.0.1:4222"
    stream: str = "RF_EVENTS"
    prefix: str = "rf.events"
    connect_timeout: float = 2.0
    ack_timeout: float = 5.0
    duplicate_window_seconds: float = 120.0

    def subject_for(self, event: Event) -> str:
        return f"{self.prefix}.{event.short}"

    async def _connect(self):
        import nats

        async def _quiet(_exc: Exception) -> None:  # nats-py logs a traceback per failed attempt otherwise
            return None

        try:
            # max_reconnect_attempts=0 means "forever" in nats-py: 1 (and no reconnect) fails fast.
            return await asyncio.wait_for(nats.connect(
                self.url, connect_timeout=self.connect_timeout, allow_reconnect=False, max_reconnect_attempts=1,
                error_cb=_quiet), self.connect_timeout * 2)
        except Exception as exc:  # noqa: BLE001 - nats raises several kinds (NoServers, OSError, timeouts)
            raise TransportUnavailable(f"NATS at {self.url} unreachable: {type(exc).__name__}: {exc}") from None

    async def _ensure_stream(self, js) -> None:
        from nats.js.api import StreamConfig
        from nats.js.errors import NotFoundError

        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(StreamConfig(name=self.stream, subjects=[f"{self.prefix}.>"],
                                             duplicate_window=self.duplicate_window_seconds))

    # --- publishing --------------------------------------------------------------------------------

    def publish(self, rows: Sequence[tuple[int, Event]]) -> list[tuple[int, int]]:
        """Publish ``(outbox seq, event)`` in order; returns ``(outbox seq, stream seq)`` for every acked event (see _publish)."""
        return asyncio.run(self._publish(rows))

    async def _publish(self, rows: Sequence[tuple[int, Event]]) -> list[tuple[int, int]]:
        # Core publishes with a reply inbox per message and one wildcard subscription collecting the
        # JetStream acks: the same protocol as js.publish without a future and a request per message.
        # Pipelined in rounds of one event per subject: an event whose predecessor (same subject) was
        # not acked is not sent at all, so a lost ack or a rejected publish can never let a later event
        # of that subject into the stream ahead of it; other subjects go on.
        import json

        nc = await self._connect()
        acks: dict[int, int] = {}
        errors: dict[int, str] = {}
        stuck: set[str] = set()  # subjects with an unacked event in this batch
        try:
            js = nc.jetstream(timeout=self.ack_timeout)
            await self._ensure_stream(js)
            inbox = nc.new_inbox()
            waiting: dict[str, object] = {"left": 0, "done": asyncio.Event()}

            async def on_ack(msg) -> None:
                index = int(msg.subject.rsplit(".", 1)[1])
                reply = json.loads(msg.data or b"{}")
                if "seq" in reply and "error" not in reply:
                    acks[index] = int(reply["seq"])
                else:
                    errors[index] = str(reply.get("error") or reply or "no ack")
                waiting["left"] -= 1
                if waiting["left"] <= 0:
                    waiting["done"].set()

            sub = await nc.subscribe(f"{inbox}.*", cb=on_ack)
            for batch in rounds(rows):
                batch = [i for i in batch if rows[i][1].subject not in stuck]
                if not batch:
                    continue
                waiting["left"], waiting["done"] = len(batch), asyncio.Event()
                for index in batch:
                    ev = rows[index][1]
                    body = ev.body if ev.body is not None else ev.to_json()
                    await nc.publish(self.subject_for(ev), body, reply=f"{inbox}.{index}",
                                     headers={"Nats-Msg-Id": ev.id, "Content-Type": CONTENT_TYPE})
                await nc.flush(timeout=self.ack_timeout)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiting["done"].wait(), self.ack_timeout)
                stuck.update(rows[i][1].subject for i in batch if i not in acks)
            await sub.unsubscribe()
        except Exception as exc:  # noqa: BLE001 - connection lost mid-batch
            raise TransportUnavailable(f"NATS at {self.url}: {type(exc).__name__}: {exc}",
                                       _acked(rows, acks)) from None
        finally:
            with contextlib.suppress(Exception):  # closing a dead connection
                await nc.close()
        acked = _acked(rows, acks)
        if len(acked) < len(rows):
            first = next(i for i in range(len(rows)) if i not in acks)
            why = errors.get(first, f"no ack within {self.ack_timeout}s")
            raise TransportUnavailable(f"NATS publish of event {rows[first][1].id} not acked: {why}; "
                                       f"{len(rows) - len(acked)} event(s) wait, their subjects' later events unsent", acked)
        return acked

    # --- reading -----------------------------------------------------------------------------------

    def fetch(self, after: int, limit: int = 100, subject: str | None = None, wait: float = 1.0) -> list[tuple[int, bytes]]:
        """Messages with stream sequence > `after` (oldest first) as ``(stream seq, body)``; nothing is acked."""
        return asyncio.run(self._fetch(after, limit, subject, wait))

    async def _fetch(self, after: int, limit: int, subject: str | None, wait: float) -> list[tuple[int, bytes]]:
        from nats.errors import TimeoutError as NatsTimeout
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        nc = await self._connect()
        out: list[tuple[int, bytes]] = []
        try:
            js = nc.jetstream(timeout=self.ack_timeout)
            await self._ensure_stream(js)
            config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1,
                                    ack_policy=AckPolicy.NONE, filter_subject=subject or f"{self.prefix}.>",
                                    inactive_threshold=30.0)
            sub = await js.pull_subscribe(subject or f"{self.prefix}.>", stream=self.stream, config=config)
            try:
                while len(out) < limit:
                    try:
                        msgs = await sub.fetch(min(256, limit - len(out)), timeout=wait)
                    except (NatsTimeout, TimeoutError):
                        break
                    out.extend((int(m.metadata.sequence.stream), bytes(m.data)) for m in msgs)
            finally:
                await sub.unsubscribe()
        except TransportUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001
            raise TransportUnavailable(f"NATS at {self.url}: {type(exc).__name__}: {exc}") from None
        finally:
            await nc.close()
        return out

    def put_raw(self, subject: str, body: bytes, msg_id: str | None = None) -> int:
        """Publish raw bytes (tests and the inbound side's producers); returns the stream sequence."""
        async def _put() -> int:
            nc = await self._connect()
            try:
                js = nc.jetstream(timeout=self.ack_timeout)
                await self._ensure_stream(js)
                ack = await js.publish(subject, body, stream=self.stream,
                                       headers={"Nats-Msg-Id": msg_id} if msg_id else None)
                return int(ack.seq)
            finally:
                await nc.close()

        return asyncio.run(_put())

    def delete_stream(self) -> None:
        async def _delete() -> None:
            nc = await self._connect()
            try:
                await nc.jetstream().delete_stream(self.stream)
            finally:
                await nc.close()

        asyncio.run(_delete())
