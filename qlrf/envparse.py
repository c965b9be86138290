"""Parsing settings from environment variables, with errors that name the variable and the value."""

from __future__ import annotations


def split_list(value: str | None) -> list[str]:
    """A comma list; blanks and surrounding spaces dropped."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def positive_int(text: str, name: str, minimum: int = 1) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected an integer >= {minimum}") from None
    if value < minimum:
        raise ValueError(f"{name}={text!r}: expected an integer >= {minimum}")
    return value


def flag(value: str | None, name: str, default: bool = False) -> bool:
    """1/true/yes or 0/false/no; unset means `default`."""
    text = (value or "").strip().lower()
    if not text:
        return default
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no"):
        return False
    raise ValueError(f"{name}={value!r}: expected true or false (1 or 0)")
