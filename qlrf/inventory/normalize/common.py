"""Helpers shared by the per-platform normalisers.

They turn every shape fault of a raw record (a dict where a list belongs, a null tag value, a
timestamp that overflows once its offset is applied) into a ValueError that names the field, so the
per-record `try` rejects that record alone.
"""

from __future__ import annotations

from datetime import UTC, datetime

from qlrf.inventory.contract import RecordError
from qlrf.inventory.normalize.reading import Defect, screen

# What a faulty record may raise while it is normalised; anything else is a bug and should surface.
RECORD_FAULTS = (ValueError, KeyError, TypeError, AttributeError, OverflowError)


def parse_time(value: object, what: str) -> datetime | None:
    """Parse the ISO 8601 forms the four platforms emit into aware UTC datetimes."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        if not isinstance(value, str):
            raise ValueError(f"{what} must be an ISO 8601 timestamp, got {type(value).__name__}")
        try:
            dt = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError(f"{what} is not an ISO 8601 timestamp: {value!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+05:00 and 9999-12-31T23:00-05:00 leave datetime's range
        raise ValueError(f"{what} {value!r} is outside the years 1-9999 once converted to UTC") from None


def require(record: dict, key: str, *, kind: str) -> object:
    value = record.get(key)
    if value in (None, ""):
        raise ValueError(f"{kind} record has no {key!r}")
    return value


def require_id(record: dict, key: str, *, kind: str) -> str:
    """An identifier is text (or an integer, as some exports write numeric ids); never a float or a container."""
    value = require(record, key, kind=kind)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{kind} {key} must be text, got {type(value).__name__}")
    return str(value)


def as_dict(value: object, what: str) -> dict:
    """A JSON object that may be absent; a list or a string in its place is a fault, not an empty object."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object, got {type(value).__name__}")
    return value


def as_list(value: object, what: str) -> list:
    """A JSON array that may be absent; iterating a dict's keys in its place would invent records."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list, got {type(value).__name__}")
    return value


def tag_text(value: object, key: str) -> str:
    """A tag or label value: text, or a plain number written without quotes. Null and objects are refused:
    `str()` would turn them into the words "None" or "{'a': 'b'}" and they would steer site/owner/env."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"tag {key!r} must have a text value, got {'null' if value is None else type(value).__name__}")


def as_str_map(value: object, what: str) -> dict[str, str]:
    return {str(k): tag_text(v, str(k)) for k, v in as_dict(value, what).items()}


def last_segment(url_or_path: str | None) -> str | None:
    if not url_or_path:
        return None
    return str(url_or_path).rstrip("/").rsplit("/", 1)[-1]


def screened(record: object, source: str, suspect: set[str] | frozenset[str]) -> object:
    """Screen a record of a suspect file for defects (bad bytes, non-finite numbers, over-deep nesting)."""
    if source in suspect:
        screen(record)
    return record


def shown_id(value: object) -> str:
    """A record id for an error message, whatever the id holds (a Defect, bytes that are not UTF-8)."""
    if value is None or isinstance(value, Defect | dict | list):
        return ""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def reject(errors: list[RecordError], exc: Exception, source: str, index: int, record: object, id_key: str) -> None:
    record_id = shown_id(record.get(id_key)) if isinstance(record, dict) else ""
    errors.append(RecordError(str(exc), source=source, index=index, record_id=record_id))
