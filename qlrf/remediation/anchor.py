"""The audit log's anchor outside the database: the MAC key and the last published chain head.

Why: a hash chain only proves that records agree with each other. Whoever can write to the
database can delete the tail and reset the head row, wipe the whole log, or edit a record and
recompute every hash after it, and the chain verifies again. Two things the database cannot
rewrite close those holes:

* a **key** with which every record's hash is MACed (HMAC-SHA256), so a record edited or
  inserted without the key no longer verifies. The key is ``QLRF_AUDIT_KEY`` when set (32
  characters or more), else a file ``key`` in the anchor folder, created on first use with mode
  0600;
* a **head file** per database (``head-<database id>.json``, MACed as well), moved forward after
  every committed append and never backwards: a log that ends before it was cut short, an empty
  log under a non-zero head was wiped.

The anchor folder is ``QLRF_AUDIT_DIR``, else ``$QLRF_HOME/audit``. Every process that appends to
one database must share it (same host or a shared volume), or the heads they publish diverge.

What this does not stop: someone holding the key *and* write access to the head file can forge a
consistent log; keep both away from the database's owner (README, "Audit trust model").
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from qlrf.envparse import environ, text
from qlrf.settings import project_root

KEY_VARIABLE = "QLRF_AUDIT_KEY"
DIR_VARIABLE = "QLRF_AUDIT_DIR"
MIN_KEY_LENGTH = 32


@dataclass(frozen=True)
class AnchoredHead:
    """The head as last published: (seq, hash), or why it cannot be trusted (``problem``)."""

    seq: int = 0
    hash: str = ""
    problem: str | None = None
    present: bool = False


def anchor_dir(env: Mapping[str, str] | None = None) -> Path:
    env = environ(env)
    configured = text(env, DIR_VARIABLE)
    if configured:
        return Path(configured).resolve()
    # QLRF_HOME as Settings reads it, without parsing every other variable (a bad unrelated one
    # must not stop the audit log from opening).
    return Path(text(env, "QLRF_HOME") or project_root() / "var").resolve() / "audit"


def database_id(label: str) -> str:
    """A stable file-name-safe id for a database URL (rendered without its password)."""
    return hashlib.sha256(label.encode("utf-8")).hexdigest()[:16]


class AuditAnchor:
    """The key and the head file of one database's audit log (see the module docstring)."""

    def __init__(self, folder: Path, database: str, key: bytes | None = None):
        self.folder = Path(folder)
        self.database = database
        self.head_path = self.folder / f"head-{database_id(database)}.json"
        self._given_key = key

    @classmethod
    def from_env(cls, database: str, env: Mapping[str, str] | None = None) -> AuditAnchor:
        """The anchor configured by the environment *now* (never read at import)."""
        env = environ(env)
        key = text(env, KEY_VARIABLE)
        if key is not None and len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"{KEY_VARIABLE}: expected at least {MIN_KEY_LENGTH} characters, got {len(key)}")
        return cls(anchor_dir(env), database, key.encode("utf-8") if key else None)

    # --- the key -----------------------------------------------------------------------------------

    @cached_property
    def key(self) -> bytes:
        if self._given_key is not None:
            return self._given_key
        return _key_file(self.folder / "key")

    def mac(self, digest: str) -> str:
        """The MAC of one record's hash."""
        return hmac.new(self.key, f"record:{digest}".encode(), hashlib.sha256).hexdigest()

    def _head_mac(self, seq: int, digest: str) -> str:
        return hmac.new(self.key, f"head:{self.database}:{seq}:{digest}".encode(), hashlib.sha256).hexdigest()

    # --- the head file -----------------------------------------------------------------------------

    def read_head(self) -> AnchoredHead:
        try:
            doc = json.loads(self.head_path.read_text(encoding="utf-8"))
            seq, digest, mac = int(doc["seq"]), str(doc["hash"]), str(doc["mac"])
        except FileNotFoundError:
            return AnchoredHead()
        except (OSError, ValueError, KeyError, TypeError) as exc:
            return AnchoredHead(problem=f"the anchored head {self.head_path} is unreadable ({exc})", present=True)
        if not hmac.compare_digest(mac, self._head_mac(seq, digest)):
            return AnchoredHead(problem=f"the anchored head {self.head_path} does not verify under the audit key (forged)",
                                present=True)
        return AnchoredHead(seq, digest, present=True)

    def advance(self, seq: int, digest: str) -> None:
        """Publish (seq, hash) unless a later head is published already: the head only moves forward."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.head_path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read_head()
            if current.problem is None and current.seq >= seq:
                return
            if current.problem is not None:
                return  # never paper over a forged or broken head: verify reports it
            doc = {"database": self.database, "seq": seq, "hash": digest, "mac": self._head_mac(seq, digest)}
            tmp = self.head_path.with_name(f".{self.head_path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(doc, out, sort_keys=True)
            os.replace(tmp, self.head_path)


def _key_file(path: Path) -> bytes:
    """The key in `path`, created (0600, 256 random bits) when there is none yet."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(32) + "\n")
    try:
        os.link(tmp, path)  # atomic create-if-absent: a racing process never reads half a key
    except FileExistsError:
        pass  # another process created it first: use theirs
    finally:
        tmp.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_text(encoding="ascii").strip()
    if len(key) < MIN_KEY_LENGTH:
        raise ValueError(f"{path}: the audit key is shorter than {MIN_KEY_LENGTH} characters (truncated?)")
    return key.encode("ascii")


__all__ = ["AnchoredHead", "AuditAnchor", "DIR_VARIABLE", "KEY_VARIABLE", "anchor_dir", "database_id"]
