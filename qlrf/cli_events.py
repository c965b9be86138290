"""``qlrf events``: the relay and the tools around it (status, tail, replay).

* ``relay [--once] [--interval S]``: publish the outbox to the broker; ``--once`` drains and exits
  (exit 1 when the broker could not take everything: the rest waits in the outbox).
* ``status [--json]``: outbox counts and the relay's lag (age of the oldest waiting event).
* ``tail [--type T] [--after SEQ] [--limit N]``: read the outbound stream (no consumer state kept).
* ``replay --since ISO``: re-publish events created since then, from the outbox; inside the broker's
  duplicate window JetStream drops them (same ``Nats-Msg-Id``), after it consumers de-duplicate on id.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
from datetime import UTC, datetime


def _outbox():
    from qlrf.events.outbox import Outbox

    return Outbox()


def _settings():
    from qlrf.events.settings import EventSettings

    return EventSettings.from_env()


def cmd_relay(args: argparse.Namespace) -> int:
    from qlrf.events.relay import Relay

    relay = Relay(_outbox(), _settings().outbound(), log=print)
    if args.once:
        result = relay.drain_once()
        print(f"delivered {result.delivered} event(s)" + (f"; broker unavailable: {result.errors[-1]}" if result.errors else ""))
        return 1 if result.errors else 0
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    with contextlib.suppress(KeyboardInterrupt):
        relay.run(interval=args.interval, stop=lambda: bool(stopping))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status = _outbox().status()
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
        return 0
    print(f"events {status['events']}  delivered {status['delivered']}  pending {status['pending']}  "
          f"lag {status['lag_seconds']:.1f}s  last delivered {status['last_delivered_at'] or '-'}")
    for etype, count in sorted(status["by_type"].items()):
        print(f"  {etype:<45} {count}")
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from qlrf.events.contract import schema, short_type

    settings = _settings()
    if settings.transport != "nats":
        raise ValueError("qlrf events tail reads JetStream only (QLRF_EVENTS_TRANSPORT=kafka: use a Kafka consumer)")
    transport = settings.outbound()
    if args.type:
        schema(short_type(args.type))  # an unknown type fails here, naming the known ones
    subject = f"{transport.prefix}.{short_type(args.type)}" if args.type else None
    for seq, body in transport.fetch(args.after, args.limit, subject=subject):
        event = json.loads(body)
        print(f"{seq:>8}  {event.get('time', '')}  {event.get('type')}  {event.get('subject')}  id={event.get('id')}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    since = datetime.fromisoformat(args.since)
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    rows = _outbox().since(since)
    acked = _settings().outbound().publish([(r.seq, r.event) for r in rows])
    print(f"re-published {len(acked)} event(s) created since {since.isoformat()} (broker de-duplicates by id)")
    return 0


def register(sub) -> None:
    """Add ``events`` to the ``qlrf`` parser (called from qlrf/cli.py build_parser)."""
    events = sub.add_parser("events", help="the event bridge: outbox relay, status, tail, replay").add_subparsers(
        dest="events_command", required=True)
    relay = events.add_parser("relay", help="publish the outbox to the broker (NATS JetStream)")
    relay.add_argument("--once", action="store_true", help="drain the outbox and exit")
    relay.add_argument("--interval", type=float, default=1.0, help="seconds between passes (default 1)")
    relay.set_defaults(func=cmd_relay)
    status = events.add_parser("status", help="outbox counts and the relay lag")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    tail = events.add_parser("tail", help="read events from the broker")
    tail.add_argument("--type", help="only this type (e.g. task.approved)")
    tail.add_argument("--after", type=int, default=0, help="stream sequence to start after (default 0)")
    tail.add_argument("--limit", type=int, default=50)
    tail.set_defaults(func=cmd_tail)
    replay = events.add_parser("replay", help="re-publish events from the outbox")
    replay.add_argument("--since", required=True, help="ISO time (UTC if no offset)")
    replay.set_defaults(func=cmd_replay)
