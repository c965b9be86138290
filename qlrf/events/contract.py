"""The event contract: CloudEvents 1.0 (structured JSON) with one versioned JSON Schema per ``data`` shape.

Every type lives under the ``io.resiliencefabric.`` namespace; its ``data`` schema is
``qlrf/events/schemas/<short type>.json`` and ``dataschema`` points at its ``$id`` (``.../v1.json``),
so a consumer knows which version it holds. ``id`` is derived from the change itself (a hash of the
type and a natural key such as ``task id | new state | plan hash``), never random: the same change
built twice (a retry, a replay) is the same event, and consumers and JetStream de-duplicate on it.
``subject`` names the site, plan or task; ``data`` carries ids and figures only (schemas forbid any
other property, so a VM list or a secret cannot slip in).

Built on the ``cloudevents`` SDK's core API (2.x: ``cloudevents.core.v1.event.CloudEvent`` and
``cloudevents.core.formats.json.JSONFormat``; the 1.x ``cloudevents.http`` module is gone).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

NAMESPACE = "io.resiliencefabric."
SOURCE_PREFIX = "/resiliencefabric/"
CONTENT_TYPE = "application/cloudevents+json"

# Short type -> what emits it (README: Event bridge). Outbound ones are written to the outbox.
OUTBOUND: dict[str, str] = {
    "inventory.discovered": "inventory assets (one per date x platform partition)",
    "drift.detected": "drift_findings_sensor (one per site x env x platform breach)",
    "image.revoked": "drift_findings_sensor (revoked-image findings)",
    "compliance.breached": "compliance_breach_sensor (one per site x env under its floor)",
    "plan.proposed": "task store (same transaction as the task insert)",
    "task.approved": "task store (same transaction as the state change)",
    "task.rejected": "task store (same transaction as the state change)",
    "task.expired": "task store (same transaction as the state change)",
    "wave.completed": "executor (not wired yet: schema fixed)",
    "rollback.performed": "task store (running -> rolled_back)",
    "dr.drill.completed": "qlrf/dr when the drill runner lands (schema fixed)",
    "alert.raised": "alerts dispatcher",
    "event.rejected": "inbound event sensor (one per refused consumer event)",
}
# Types accepted from outside by the inbound sensor.
INBOUND: dict[str, str] = {
    "image.published": "an image pipeline: refresh the golden baselines (golden_job)",
    "asset.changed": "a CMDB: re-discover that platform (platform_job, today's partition)",
    "task.approve": "a ChatOps bot: approve a task (plan hash required; identity from the trusted source)",
}
ALL_TYPES: tuple[str, ...] = (*OUTBOUND, *INBOUND)


class EventContractError(ValueError):
    """An event that breaks the contract (unknown type, bad attributes, data failing its schema)."""


def full_type(short: str) -> str:
    return short if short.startswith(NAMESPACE) else NAMESPACE + short


def short_type(full: str) -> str:
    return full[len(NAMESPACE):] if full.startswith(NAMESPACE) else full


@functools.cache
def schema(short: str) -> dict:
    """The JSON Schema of a type's ``data`` (packaged with qlrf)."""
    if short not in ALL_TYPES:
        raise EventContractError(f"unknown event type {full_type(short)!r} (known: {', '.join(ALL_TYPES)})")
    text = resources.files("qlrf.events").joinpath("schemas", f"{short}.json").read_text()
    return json.loads(text)


@functools.cache
def _validator(short: str):
    from jsonschema import Draft202012Validator  # only where events are validated

    return Draft202012Validator(schema(short))


def validate_data(short: str, data: Any, where: str = "event") -> None:
    """Raise :class:`EventContractError` naming the type, the place and the first failing field."""
    errors = sorted(_validator(short).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        path = "/".join(str(p) for p in err.absolute_path) or "(data)"
        raise EventContractError(f"{where}: data of {full_type(short)} fails its schema at {path}: {err.message}")


def event_id(short: str, key: str) -> str:
    """The stable id: the same change always gets the same id (consumers de-duplicate on it)."""
    return hashlib.sha256(f"{full_type(short)}|{key}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Event:
    """One CloudEvent as the outbox keeps it: attributes plus JSON ``data``."""

    id: str
    type: str  # full type
    source: str
    subject: str
    time: datetime
    data: dict
    body: bytes | None = field(default=None, compare=False, repr=False)  # the serialised form, when known

    @property
    def short(self) -> str:
        return short_type(self.type)

    def cloudevent(self):
        """The SDK object (validates the CloudEvents attributes)."""
        from cloudevents.core.v1.event import CloudEvent

        return CloudEvent(
            {
                "id": self.id,
                "source": self.source,
                "type": self.type,
                "specversion": "1.0",
                "subject": self.subject,
                "time": self.time,
                "datacontenttype": "application/json",
                "dataschema": schema(self.short)["$id"],
            },
            self.data,
        )

    def to_json(self) -> bytes:
        """Structured-mode JSON (``application/cloudevents+json``) written by the SDK."""
        from cloudevents.core.formats.json import JSONFormat

        return JSONFormat().write(self.cloudevent())


def build(short: str, *, key: str, source: str, subject: str, data: dict, time: datetime) -> Event:
    """An event of a known type, its data checked against the type's schema before anyone stores it."""
    if short not in ALL_TYPES:
        raise EventContractError(f"unknown event type {full_type(short)!r} (known: {', '.join(ALL_TYPES)})")
    if not subject:
        raise EventContractError(f"{full_type(short)}: subject must name the site, plan or task")
    data = json.loads(json.dumps(data, default=str))
    validate_data(short, data, f"{full_type(short)} {subject}")
    src = source if source.startswith("/") or ":" in source else SOURCE_PREFIX + source
    when = time.astimezone(UTC) if time.tzinfo else time.replace(tzinfo=UTC)
    return Event(event_id(short, key), full_type(short), src, subject, when, data)


def parse(body: bytes | str, where: str = "event", allowed: tuple[str, ...] | None = None) -> Event:
    """Read a structured CloudEvent from outside: not CloudEvents, unknown type or bad data -> EventContractError."""
    from cloudevents.core.formats.json import JSONFormat

    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventContractError(f"{where}: not JSON ({exc})") from None
    if not isinstance(raw, dict) or raw.get("specversion") != "1.0":
        raise EventContractError(f"{where}: not a CloudEvents 1.0 structured event (specversion missing or not 1.0)")
    try:
        ce = JSONFormat().read(None, body)
    except Exception as exc:  # noqa: BLE001 - the SDK raises several kinds for bad attributes
        raise EventContractError(f"{where} id={raw.get('id')!r}: invalid CloudEvent attributes: {exc}") from None
    full = ce.get_type()
    if not full.startswith(NAMESPACE) or short_type(full) not in ALL_TYPES:
        raise EventContractError(f"{where} id={ce.get_id()!r}: unknown event type {full!r}")
    if allowed is not None and short_type(full) not in allowed:
        raise EventContractError(f"{where} id={ce.get_id()!r}: {full} is not accepted here (accepted: {', '.join(allowed)})")
    data = ce.get_data()
    if not isinstance(data, dict):
        raise EventContractError(f"{where} id={ce.get_id()!r}: data must be a JSON object")
    validate_data(short_type(full), data, f"{where} id={ce.get_id()!r}")
    time = ce.get_time() or datetime.fromtimestamp(0, UTC)
    return Event(ce.get_id(), full, ce.get_source(), ce.get_subject() or "", time, data)
