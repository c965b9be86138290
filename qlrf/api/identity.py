"""Who is calling the API: never a name the caller types.

Two sources, both configured on the server:

* **Bearer tokens**: ``QLRF_API_TOKENS_FILE`` is a YAML (or JSON) mapping of ``sha256(token)`` in
  hex (optionally prefixed ``sha256:``) to the identity it stands for. Only digests are stored, so the
  file alone signs nobody in; it must still not be readable or writable by group or others (whoever
  can write it can mint an approver). A presented token is hashed and compared with every digest in
  constant time; it is never logged or echoed. The file is re-read when it changes (:class:`TokenFile`),
  so revoking a token needs no restart.
* **A trusted local user** (``QLRF_API_TRUSTED_LOCAL_USER``): requests without an Authorization
  header act as that user. Honoured only when the server binds a loopback address (anything else
  refuses to start), and every response then says so in ``X-QLRF-Identity-Mode``.

A request that carries an Authorization header is judged by it alone: a wrong token never falls
back to the local user. Identities are normalised (:func:`normalise_identity`) so the task store's
self-approval check compares like with like; names the system uses for itself (``policy:...``,
``system:...``) are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from qlrf.api.config import LOCAL_USER_VARIABLE, TOKENS_VARIABLE, ApiSettings, is_loopback
from qlrf.remediation.approvals import normalise_identity

LOCAL_MODE_HEADER = "X-QLRF-Identity-Mode"
LOCAL_MODE_VALUE = "trusted-local"
RESERVED_PREFIXES = ("policy:", "system:")
_DIGEST = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
MAX_TOKEN_LENGTH = 4096
log = logging.getLogger("qlrf.api")


class IdentityConfigError(ValueError):
    """The server's identity configuration is unusable; the message names the variable and entry."""


class Unauthenticated(Exception):
    """No acceptable identity on this request (the API answers 401 with this message)."""


@dataclass(frozen=True)
class Identity:
    name: str  # normalised: what the task store records and compares
    via: Literal["token", "trusted_local"]


def token_digest(token: str) -> str:
    """The hex sha256 of a token: what the tokens file holds (``printf %s TOKEN | sha256sum``)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def checked_identity(value: object, where: str) -> str:
    """`value` as a stored identity, or IdentityConfigError saying what is wrong with it at `where`."""
    if not isinstance(value, str) or not normalise_identity(value):
        raise IdentityConfigError(f"{where}: the identity must be a non-empty string")
    name = normalise_identity(value)
    if name.startswith(RESERVED_PREFIXES):
        raise IdentityConfigError(f"{where}: identity {name!r} is reserved for the system ({', '.join(RESERVED_PREFIXES)})")
    return name


class TokenTable:
    """Token digests and the identities they sign in as."""

    def __init__(self, entries: Mapping[str, str]):
        self._entries = tuple((digest, name) for digest, name in entries.items())

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls, path: Path) -> TokenTable:
        where = f"{TOKENS_VARIABLE}={path}"
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            raise IdentityConfigError(f"{where}: no such file") from None
        if mode & 0o077:
            raise IdentityConfigError(
                f"{where}: mode {mode:04o} lets group or others read or change it; run chmod 600 on it"
            )
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            line = getattr(getattr(exc, "problem_mark", None), "line", None)
            at = f" (line {line + 1})" if line is not None else ""
            raise IdentityConfigError(f"{where}: not YAML or JSON{at}") from None
        if not isinstance(doc, Mapping) or not doc:
            raise IdentityConfigError(f"{where}: expected a mapping of sha256(token) hex digests to identities")
        entries: dict[str, str] = {}
        for n, (key, value) in enumerate(doc.items(), start=1):
            # The key is never echoed: a plaintext token pasted by mistake must not reach a log.
            match = _DIGEST.match(str(key).strip().lower())
            if not match:
                raise IdentityConfigError(
                    f"{where}: entry {n}: the key must be the sha256 hex digest of a token (64 hex characters), "
                    "not the token itself"
                )
            entries[match.group(1)] = checked_identity(value, f"{where}: entry {n}")
        return cls(entries)

    def identify(self, token: str) -> str | None:
        """The identity of `token`, comparing against every digest so timing says nothing of which matched."""
        presented = token_digest(token)
        found = None
        for digest, name in self._entries:
            if hmac.compare_digest(presented, digest):
                found = name
        return found


class TokenFile:
    """A :class:`TokenTable` that follows its file: an added or revoked token counts from the next
    request, without a restart. A change that makes the file unusable (bad YAML, opened to group or
    others) refuses every token until it is mended, and says why once in the server's log."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._table: TokenTable | None = TokenTable.load(path)  # unusable at start: the server does not start
        self._problem: str | None = None

    def __len__(self) -> int:
        return len(self._table) if self._table is not None else 0

    def _stat(self) -> tuple[int, ...] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)

    def _current(self) -> TokenTable | None:
        stamp = self._stat()
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._table, self._problem = TokenTable.load(self.path), None
                except IdentityConfigError as exc:
                    self._table, self._problem = None, str(exc)
                    log.error("tokens file unusable, every token refused until it is mended: %s", exc)
            return self._table

    def identify(self, token: str) -> str | None:
        table = self._current()
        if table is None:
            raise Unauthenticated("bearer token refused: the server's tokens file is unusable (see the server log)")
        return table.identify(token)


class Authenticator:
    """Turns a request's Authorization header (or its absence) into an :class:`Identity`."""

    def __init__(self, tokens: TokenTable | TokenFile | None = None, trusted_local_user: str | None = None):
        self.tokens = tokens
        self.local_user = checked_identity(trusted_local_user, LOCAL_USER_VARIABLE) if trusted_local_user else None

    @property
    def local_mode(self) -> bool:
        return self.local_user is not None

    @classmethod
    def from_settings(cls, api: ApiSettings) -> Authenticator:
        if api.trusted_local_user and not is_loopback(api.host):
            raise IdentityConfigError(
                f"{LOCAL_USER_VARIABLE} is only honoured when the API binds a loopback address, not {api.host!r}: "
                "unset it, or bind 127.0.0.1"
            )
        tokens = TokenFile(api.tokens_file) if api.tokens_file else None
        return cls(tokens, api.trusted_local_user)

    def identify(self, authorization: str | None) -> Identity:
        if authorization is None:
            if self.local_user is not None:
                return Identity(self.local_user, "trusted_local")
            raise Unauthenticated("no identity: send 'Authorization: Bearer <token>'" + self._no_tokens_hint())
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
            raise Unauthenticated("Authorization header: expected 'Bearer <token>'")
        if self.tokens is None:
            raise Unauthenticated("bearer token refused" + self._no_tokens_hint())
        name = self.tokens.identify(token)
        if name is None:
            raise Unauthenticated("bearer token refused: unknown or revoked")
        return Identity(name, "token")

    def _no_tokens_hint(self) -> str:
        return "" if self.tokens is not None else f" (this server has no tokens: {TOKENS_VARIABLE} is not set)"


__all__ = [
    "LOCAL_MODE_HEADER",
    "LOCAL_MODE_VALUE",
    "Authenticator",
    "Identity",
    "IdentityConfigError",
    "TokenFile",
    "TokenTable",
    "Unauthenticated",
    "token_digest",
]
