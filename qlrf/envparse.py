"""The one way configuration is read: environment variables parsed with errors that name the variable.

Every reader in ``qlrf/`` and ``resources/`` takes an ``env`` mapping and falls back to
:func:`environ` *when called*, never at import, so tests pass a dict and a code location loads with
an empty environment. Resources whose fields override variables build that mapping with
:func:`overlay`, then hand it to the same parser the CLI uses: one parser, one set of error
messages, whichever way a value arrived.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping


def environ(env: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """``env`` if given, else the process environment as it is now (the only ``os.environ`` read)."""
    return os.environ if env is None else env


def text(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    """The variable stripped; blank counts as unset (a `FOO=` line in a .env file means "not set")."""
    value = (env.get(name) or "").strip()
    return value or default


def choice(env: Mapping[str, str], name: str, options: Iterable[str], default: str) -> str:
    """One of ``options`` (case-insensitive); unset means ``default``."""
    allowed = tuple(options)
    value = (text(env, name) or default).lower()
    if value not in allowed:
        raise ValueError(f"{name}={env.get(name)!r}: expected one of {', '.join(allowed)}")
    return value


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


def as_variable(value: object) -> str:
    """A field value written the way its variable is written: lists as comma lists, booleans as true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def overlay(fields: Mapping[str, object], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with every field that is set (not None) written over its variable.

    This is the whole "resource fields override the environment" rule: a resource maps each field to
    the variable it stands for, and the domain parser reads the result, so a field is validated
    exactly like the variable it replaces.
    """
    merged = dict(environ(env))
    merged.update({name: as_variable(value) for name, value in fields.items() if value is not None})
    return merged
