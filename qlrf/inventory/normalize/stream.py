"""Normalising exports of any size in bounded memory: EC2 exports are read a reservation at a time.

`json.loads` of an 860 MiB `describe-instances` export holds the text and every parsed object at
once (several GiB), and the rows pile up in a list before the first line is written. Here a clean
EC2 file is parsed incrementally (4 MiB of text at a time, one reservation per `raw_decode`), each
instance becomes its row at once, and the rows go to a spool file that reaches the output only when
the whole input file has been read: a file that turns out truncated or odd halfway through writes
nothing of its own, exactly as before. Such a file, and any file with a sign of trouble (bytes that
are not UTF-8, surrogate escapes, NaN, nesting too deep, an unexpected shape), is read again by the
whole-file reader (reading.py), which screens it record by record, so results never depend on the
path taken. Other platforms, and `--snapshots`, use the whole-file path.

Duplicate asset ids are refused across all files as before: the first row is kept, every later one
is an error naming both records.
"""

from __future__ import annotations

import codecs
import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from qlrf.inventory.contract import RecordError, _where, json_default
from qlrf.inventory.normalize import no_cyclic_gc, normalise_files
from qlrf.inventory.normalize.common import RECORD_FAULTS, reject
from qlrf.inventory.normalize.reading import load_json_files
from qlrf.inventory.tags import TagMapping

CHUNK = 1 << 22
_WS = re.compile(r"[ \t\n\r]*")


class NotStreamable(Exception):
    """This file needs the whole-file reader: an unexpected shape or a sign of trouble."""


def _finite(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise NotStreamable(f"{text} overflows a number")
    return value


def _constant(name: str) -> float:
    raise NotStreamable(f"{name} is not a number a record may hold")


class _Text:
    """Strictly decoded UTF-8 text of a file, a chunk at a time, with a read position."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.json = json.JSONDecoder(parse_float=_finite, parse_constant=_constant)
        self.buf, self.pos, self.eof = "", 0, False

    def _fill(self) -> bool:
        if self.eof:
            return False
        raw = self.handle.read(CHUNK)
        try:
            text = self.decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as exc:
            raise NotStreamable(f"not UTF-8: {exc}") from None
        self.eof = not raw
        probe = self.buf[-2:] + text
        if "\\ud" in probe or "\\uD" in probe:  # surrogate escapes: the whole-file reader screens them
            raise NotStreamable("surrogate escapes")
        self.buf, self.pos = self.buf[self.pos:] + text, 0
        return True

    def peek(self) -> str:
        """The next non-blank character ('' at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise NotStreamable(f"expected {char!r}")
        self.pos += 1

    def value(self) -> object:
        self.peek()
        while True:
            try:
                value, end = self.json.raw_decode(self.buf, self.pos)
            except RecursionError:
                raise NotStreamable("nesting too deep") from None
            except ValueError as exc:  # incomplete here (read more), or not JSON at all
                if self._fill():
                    continue
                raise NotStreamable(f"not JSON: {exc}") from None
            if end >= len(self.buf) and not self.eof and self._fill():
                continue  # a number at the end of the text may go on in the next chunk
            self.pos = end
            return value


def ec2_instances(handle: BinaryIO) -> Iterator[tuple[int, object, object]]:
    """(index, OwnerId, instance) of a `{"Reservations": [...]}` export, numbered across reservations as
    the whole-file normaliser numbers them; NotStreamable for anything else."""
    text = _Text(handle)
    text.expect("{")
    index, seen = 0, False
    while text.peek() != "}":
        key = text.value()
        text.expect(":")
        if key == "Reservations" and not seen:
            seen = True
            text.expect("[")
            while text.peek() != "]":
                reservation = text.value()
                instances = reservation.get("Instances") if type(reservation) is dict else None
                if type(instances) is not list:
                    raise NotStreamable("a reservation of another shape")
                owner = reservation.get("OwnerId")
                for instance in instances:
                    yield index, owner, instance
                    index += 1
                if text.peek() == ",":
                    text.pos += 1
                elif text.peek() != "]":
                    raise NotStreamable("expected , or ]")
            text.pos += 1
        elif key in ("Reservations", "Snapshots") or not isinstance(key, str):
            raise NotStreamable(f"top-level key {key!r}")
        else:
            text.value()  # NextToken and the like
        if text.peek() == ",":
            text.pos += 1
        elif text.peek() != "}":
            raise NotStreamable("expected , or }")
    text.pos += 1
    if not seen or text.peek() != "":
        raise NotStreamable("no Reservations, or text after the document")


@dataclass
class Written:
    rows: int = 0
    errors: list[RecordError] = field(default_factory=list)


class _Rows:
    """Rows on their way out: encoded, refused when their asset id was seen before (keep the first)."""

    def __init__(self) -> None:
        self.first: dict[str, tuple[str, int | None]] = {}
        self.encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=json_default).encode

    def line(self, row: dict, source: str, index: int | None, pending: dict, errors: list[RecordError]) -> bytes | None:
        asset_id = row["asset_id"]
        where = self.first.get(asset_id) or pending.get(asset_id)
        if where is not None:
            errors.append(RecordError(f"duplicate asset id {asset_id}: first seen at {_where(*where)}",
                                      source=source, index=index, record_id=asset_id))
            return None
        pending[asset_id] = (source, index)
        return (self.encode(row) + "\n").encode()


def _stream_file(path: str, rows: _Rows, spool: BinaryIO, *, mapping: TagMapping, discovered_at: datetime,
                 account: str | None) -> tuple[int, dict, list[RecordError]]:
    from qlrf.inventory.normalize.aws import owned_instance_row

    pending: dict[str, tuple[str, int | None]] = {}
    errors: list[RecordError] = []
    written = 0
    with open(path, "rb") as handle:
        for index, owner, instance in ec2_instances(handle):
            try:
                row = owned_instance_row(owner, instance, account, mapping, discovered_at)
            except RECORD_FAULTS as exc:
                reject(errors, exc, path, index, instance, "InstanceId")
                continue
            line = rows.line(row, path, index, pending, errors)
            if line is not None:
                spool.write(line)
                written += 1
    return written, pending, errors


def _whole_file(path: str, rows: _Rows, spool: BinaryIO, *, mapping: TagMapping, discovered_at: datetime,
                account: str | None, region: str | None) -> tuple[int, dict, list[RecordError]]:
    from qlrf.inventory.normalize.aws import normalise

    loaded = load_json_files([path])
    result = normalise(loaded.docs, mapping=mapping, discovered_at=discovered_at, account=account, region=region,
                       suspect=frozenset(loaded.suspect))
    result._align_origins()
    pending: dict[str, tuple[str, int | None]] = {}
    errors = loaded.errors + result.errors
    written = 0
    for row, (source, index) in zip(result.vms, result.origins, strict=True):
        line = rows.line(row, source, index, pending, errors)
        if line is not None:
            spool.write(line)
            written += 1
    return written, pending, errors


def normalise_to(
    out: BinaryIO, platform: str, paths: Iterable[str | Path], *, mapping: TagMapping, discovered_at: datetime,
    account: str | None = None, region: str | None = None, snapshots: bool = False,
    encode: Callable[[dict], str] | None = None,
) -> Written:
    """Write the normalised rows (VMs, or with `snapshots` the snapshot rows) of `paths` to `out` as JSON lines."""
    paths = [str(p) for p in paths]
    done = Written()
    if platform != "aws" or snapshots:
        result = normalise_files(platform, paths, mapping=mapping, discovered_at=discovered_at, account=account, region=region)
        line = encode or _Rows().encode
        with no_cyclic_gc():
            out.write("".join(line(r) + "\n" for r in (result.snapshots if snapshots else result.vms)).encode())
        done.rows = len(result.snapshots if snapshots else result.vms)
        done.errors = result.errors
        return done
    rows = _Rows()
    options = {"mapping": mapping, "discovered_at": discovered_at, "account": account}
    with no_cyclic_gc():
        for path in paths:
            with tempfile.TemporaryFile() as spool:
                try:
                    written, pending, errors = _stream_file(path, rows, spool, **options)
                except NotStreamable:
                    spool.seek(0)
                    spool.truncate()
                    written, pending, errors = _whole_file(path, rows, spool, region=region, **options)
                except OSError as exc:
                    written, pending, errors = 0, {}, [RecordError(f"cannot read JSON: {exc.strerror or exc}", source=path)]
                spool.seek(0)
                shutil.copyfileobj(spool, out, 1 << 20)
            rows.first.update(pending)
            done.rows += written
            done.errors += errors
    return done
