"""Inbound events: parse, validate and map consumer events to work; refuse the rest on the record.

Mapping (``contract.INBOUND``):

* ``image.published`` -> a ``golden_images_job`` run request (refresh the golden baselines);
* ``asset.changed``   -> a ``platform_daily_job`` run request for ``<today>|<platform>`` (re-discover it);
* ``task.approve``    -> :meth:`TaskStore.approve` with the plan hash the event carries; the approver
  is **not** read from the event: it is the identity configured for the event's ``source`` in the
  trusted ChatOps mapping (``QLRF_EVENTS_TRUSTED_SOURCES``). A source not in the mapping is refused.
  The approvals' own rules then apply (hash must match, requester never approves, expiry).
  :func:`approver_for` checks that identity's grants first (the approver role in the task's own
  organisation, read from the store: an ``org`` in the event's data is never trusted); a refusal is
  an ``access_denied`` audit record and a :class:`Rejection`.

Everything else (not JSON, not CloudEvents 1.0, unknown type, data failing its schema, an outbound
type sent inbound, a task/hash that does not match, an untrusted source) is a :class:`Rejection`:
logged with the event id, written to the outbox as an ``event.rejected`` event, and skipped; nothing
changes. Run keys are ``<source>:<id>``, so a redelivered event never starts a second run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from qlrf.events.contract import INBOUND, EventContractError, build, parse
from qlrf.events.outbox import Outbox

GOLDEN_JOB = "golden_images_job"
PLATFORM_JOB = "platform_daily_job"
ENV_TRUSTED = "QLRF_EVENTS_TRUSTED_SOURCES"


@dataclass(frozen=True)
class RunSpec:
    """A run the sensor requests (kept Dagster-free here)."""

    run_key: str
    job_name: str
    partition_key: str | None
    tags: dict


@dataclass(frozen=True)
class Rejection:
    stream_seq: int
    event_id: str
    source: str | None
    type: str | None
    reason: str

    def line(self) -> str:
        return f"event rejected: seq={self.stream_seq} id={self.event_id} type={self.type} source={self.source}: {self.reason}"


@dataclass
class InboundTick:
    cursor: int
    runs: list[RunSpec] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def parse_trusted(text: str | None) -> dict[str, str]:
    """``source=identity,source2=identity2`` -> mapping; a malformed item fails naming the variable."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in (text or "").split(","))):
        source, sep, identity = item.partition("=")
        if not sep or not source.strip() or not identity.strip():
            raise ValueError(f"{ENV_TRUSTED}: {item!r} is not <cloudevents source>=<identity>")
        out[source.strip()] = identity.strip()
    return out


def _raw_id(body: bytes) -> tuple[str, str | None, str | None]:
    """Best-effort id/source/type of an event that failed to parse (for the log line and the record)."""
    import json

    try:
        raw = json.loads(body)
        if isinstance(raw, dict):
            return str(raw.get("id") or "?"), raw.get("source"), raw.get("type")
    except (ValueError, UnicodeDecodeError):
        pass
    return "?", None, None


def process(
    messages: Iterable[tuple[int, bytes]],
    *,
    cursor: int,
    today: str,
    approve: Callable[[str, str, str, str], object],
    trusted: Mapping[str, str],
    platforms: Iterable[str],
) -> InboundTick:
    """Map each ``(stream seq, body)`` to work; the cursor moves past every message, refused or not.

    `approve(task_id, plan_hash, approver, reason)` is the task store's (it raises TaskStateError
    subclasses on a wrong hash, self-approval, expiry or a task that is not pending).
    """
    tick = InboundTick(cursor=cursor)
    known = set(platforms)
    for seq, body in messages:
        tick.cursor = max(tick.cursor, seq)
        try:
            event = parse(body, f"stream seq {seq}", allowed=tuple(INBOUND))
        except EventContractError as exc:
            eid, source, etype = _raw_id(body)
            tick.rejections.append(Rejection(seq, eid, source, etype, str(exc)))
            continue
        ref = Rejection(seq, event.id, event.source, event.type, "")
        key = f"{event.source}:{event.id}"
        tags = {"qlrf/trigger": "event_inbound_sensor", "qlrf/event_id": event.id, "qlrf/event_type": event.short}
        if event.short == "image.published":
            tick.runs.append(RunSpec(key, GOLDEN_JOB, today, tags))
        elif event.short == "asset.changed":
            platform = event.data["platform"]
            if platform not in known:
                tick.rejections.append(_why(ref, f"unknown platform {platform!r} (platforms: {', '.join(sorted(known))})"))
                continue
            tick.runs.append(RunSpec(key, PLATFORM_JOB, f"{today}|{platform}", tags))
        else:  # task.approve
            identity = trusted.get(event.source)
            if identity is None:
                tick.rejections.append(_why(ref, f"source {event.source!r} is not a trusted ChatOps source ({ENV_TRUSTED})"))
                continue
            data = event.data
            try:
                approve(data["task_id"], data["plan_hash"], identity, f"{data['reason']} (via event {event.id})")
            except (ValueError, PermissionError) as exc:  # TaskStateError, AccessDenied (audited); nothing changed
                tick.rejections.append(_why(ref, str(exc)))
                continue
            tick.approved.append(data["task_id"])
    return tick


def approver_for(store) -> Callable[[str, str, str, str], object]:
    """`store.approve`, guarded: the configured identity must be an approver of the task's organisation
    (grants from the role table in the store's database, read per event)."""
    from qlrf.remediation.audit import AuditLog
    from qlrf.tenancy.enforce import guarded_approve
    from qlrf.tenancy.store import GrantStore

    grants = GrantStore(engine=store.engine, audit=store.audit if store.audit is not None else AuditLog(engine=store.engine))
    return guarded_approve(store, lambda name: grants.principal(name, "token"))


def _why(ref: Rejection, reason: str) -> Rejection:
    return Rejection(ref.stream_seq, ref.event_id, ref.source, ref.type, reason)


def record_rejections(outbox: Outbox, rejections: Iterable[Rejection], now: datetime) -> int:
    """Write one ``event.rejected`` event per refusal (stable id: the same refusal is recorded once)."""
    events = [
        build("event.rejected", key=f"{r.stream_seq}|{r.event_id}", source="events/inbound",
              subject=f"event/{r.event_id}",
              data={"event_id": r.event_id, "event_source": r.source, "event_type": r.type,
                    "stream_seq": r.stream_seq, "reason": r.reason[:1000]},
              time=now)
        for r in rejections
    ]
    return outbox.write(events)
