"""The one way configuration is read: environment variables parsed with errors that name the variable.

Every reader in ``qlrf/`` and ``resources/`` takes an ``env`` mapping and falls back to
:func:`environ` *when called*, never at import, so tests pass a dict and a code location loads with
an empty environment. Resources whose fields override variables build that mapping with
:func:`overlay`, then hand it to the same parser the CLI uses: one parser, one set of error
messages, whichever way a value arrived.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote, urlsplit, urlunsplit


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


# --- credentials in URLs --------------------------------------------------------------------------
# A URL is printed in errors, progress lines, Dagster metadata and SDK exceptions, so a credential
# inside it leaks everywhere it goes. Endpoints whose credentials have their own variable refuse them
# (`reject_url_credentials`); URLs that are secret by nature (webhooks, database URLs) are only ever
# shown as scheme and host (`redact_url`).

#: Query parameters that carry a credential (compared case-insensitively, "-" and "_" alike).
SECRET_QUERY_KEYS = frozenset({
    "api_key", "apikey", "key", "token", "access_token", "auth", "sig", "signature", "password", "pwd",
    "secret", "client_secret", "code", "x_api_key",
})


class UrlCredentialsError(ValueError):
    """A URL variable carries a credential; the message names the variable, never its value."""


def _authority(url: str) -> str:
    """The netloc of `url`; a bare `host[:port]` (no scheme) is read as an authority too."""
    text = url.strip()
    if "://" not in text:
        text = "//" + text
    return urlsplit_safe(text)[1]


def urlsplit_safe(url: str) -> tuple[str, str, str, str, str]:
    """urlsplit that never raises (a bad IPv6 literal raises ValueError echoing the URL): the parts,
    with the whole text as the authority when it cannot be split."""
    try:
        return tuple(urlsplit(url))  # type: ignore[return-value]
    except ValueError:
        head, sep, rest = url.partition("://")
        return (head if sep else "", (rest if sep else url).split("/", 1)[0], "", "", "")


def _secret_keys(query: str) -> list[str]:
    names = [part.split("=", 1)[0] for part in query.replace(";", "&").split("&") if part]
    return [n for n in names if unquote(n).strip().lower().replace("-", "_") in SECRET_QUERY_KEYS]


def url_credentials(url: str) -> list[str]:
    """What credential `url` carries, as phrases safe to print: "user:password@", "query parameter key"."""
    userinfo, at, _host = _authority(url).rpartition("@")
    found = [("user:password@" if ":" in userinfo else "user@")] if at else []
    query = urlsplit_safe(url if "://" in url else "//" + url.strip())[3]
    return found + [f"query parameter {name}" for name in _secret_keys(query)]


def reject_url_credentials(url: str, name: str, instead: str) -> str:
    """`url` unchanged, or UrlCredentialsError naming the variable and where the credential belongs."""
    found = url_credentials(url)
    if found:
        raise UrlCredentialsError(
            f"{name}: the URL carries a credential ({', '.join(found)}); remove it and set {instead} instead"
        )
    return url


def endpoint_url(env: Mapping[str, str], name: str, instead: str) -> str | None:
    """The endpoint variable `name` (blank = unset), refused when it carries a credential: SDK errors
    quote endpoints ("Could not connect to the endpoint URL: ..."), so one would be printed with every
    failure. `instead` names the variables the credential belongs in."""
    value = text(env, name)
    return reject_url_credentials(value, name, instead) if value else None


def strip_url_credentials(url: str) -> str:
    """`url` without userinfo and without credential query parameters (path kept): for endpoints whose
    path says nothing secret, e.g. a model base URL shown in a log line."""
    scheme, netloc, path, query, fragment = urlsplit_safe(url)
    host = netloc.rpartition("@")[2]
    kept = "&".join(p for p in query.split("&") if p and p.split("=", 1)[0] not in _secret_keys(p))
    return urlunsplit((scheme, host, path, kept, ""))


def redact_url(url: str | None) -> str:
    """Scheme and host (and port) only: how a URL that is secret by nature (a Slack webhook's path, a
    database URL's password) may appear in any message."""
    if not url:
        return ""
    scheme, netloc, *_ = urlsplit_safe(url.strip())
    host = netloc.rpartition("@")[2]
    return f"{scheme}://{host}" if scheme else host


def scrub_url(text: str, url: str | None) -> str:
    """`text` with `url` and each of its secret parts (userinfo, path, query) replaced by "***".

    SDK exceptions echo URLs whole or in pieces (a request line shows only the path); replacing the
    whole URL alone would let the webhook token in the path through."""
    if not url:
        return text
    scheme, netloc, path, query, _ = urlsplit_safe(url.strip())
    userinfo = netloc.rpartition("@")[0]
    pieces = [url.strip(), userinfo, unquote(userinfo), path + ("?" + query if query else ""), query, path]
    for piece in sorted({p for p in pieces if p and len(p) > 1 and p != "/"}, key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


# --- secrets in messages --------------------------------------------------------------------------

#: Shorter values are not redacted: replacing "ab" everywhere would mangle the message and hide nothing.
MIN_SECRET = 4
_SEPARATORS = re.compile(r"[\s\x00-\x1f\x7f]+")


def _spellings(secret: str) -> set[str]:
    """The ways a secret comes back inside error texts: as is, whitespace-folded (one-line messages),
    escaped (repr, bytes, JSON), percent-encoded (URLs), and, when it holds whitespace or control
    characters, each long run between them (a header value quoted after the first newline)."""
    forms = {
        secret,
        " ".join(secret.split()),
        repr(secret)[1:-1],
        secret.encode("unicode_escape").decode("ascii"),
        json.dumps(secret)[1:-1],
        quote(secret, safe=""),
    }
    forms |= {piece for piece in _SEPARATORS.split(secret) if len(piece) >= 6}
    return {f for f in forms if len(f) >= MIN_SECRET}


def redact_secrets(text: str, secrets: Iterable[str | None], mask: str = "***") -> str:
    """`text` with every spelling of every secret replaced by `mask` (longest first, so a piece never
    leaves the rest of a longer form behind), and every credential-shaped value masked too."""
    forms = set().union(*(_spellings(s) for s in secrets if s and len(s) >= MIN_SECRET))
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, mask)
    return redact_credentials(text)


# Credentials recognisable by their shape, whoever's they are: an SDK or a server that quotes a request
# back quotes its Authorization header, and a bearer token derived from a planted secret (Google's
# self-signed JWT, an OAuth access token) matches no configured value.
_CREDENTIAL_SHAPES = (
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1\2***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(\.[A-Za-z0-9_-]*)?"), "***"),
    (re.compile(r"(?i)\b(x-amz-security-token|x-goog-iam-authorization-token|x-api-key|api-key|"
                r"client_secret|access_token|refresh_token|password)(['\"]?\s*[:=]\s*['\"]?)(?!\*\*\*)[^'\"&;,\s}]+"),
     r"\1\2***"),
)


def redact_credentials(text: str) -> str:
    """`text` with credential-shaped values masked: bearer/basic tokens, JWTs, and the values of
    headers and fields that always hold one (x-amz-security-token, client_secret, password...)."""
    for pattern, replacement in _CREDENTIAL_SHAPES:
        text = pattern.sub(replacement, text)
    return text
