"""Helpers shared by the per-platform normalisers."""

from __future__ import annotations

from datetime import UTC, datetime

from qlrf.inventory.contract import RecordError


def parse_time(value: object, what: str) -> datetime | None:
    """Parse the ISO 8601 forms the four platforms emit into aware UTC datetimes."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value)
        try:
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ValueError(f"{what} is not an ISO 8601 timestamp: {text!r}") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def require(record: dict, key: str, *, kind: str) -> object:
    value = record.get(key)
    if value in (None, ""):
        raise ValueError(f"{kind} record has no {key!r}")
    return value


def as_str_map(value: object, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object, got {type(value).__name__}")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def last_segment(url_or_path: str | None) -> str | None:
    if not url_or_path:
        return None
    return url_or_path.rstrip("/").rsplit("/", 1)[-1]


def reject(errors: list[RecordError], exc: Exception, source: str, index: int, record: object, id_key: str) -> None:
    record_id = str(record.get(id_key, "")) if isinstance(record, dict) else ""
    errors.append(RecordError(str(exc), source=source, index=index, record_id=record_id))
