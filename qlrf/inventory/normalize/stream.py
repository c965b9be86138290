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
from collections.abc import Iterable, Iterator
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


@dataclass
class _FileDone:
    """One input file normalised into its spool: the asset id and record index of every line, in order."""

    path: str
    spool: str
    ids: list[tuple[str, int | None]]
    errors: list[RecordError]


class _Encoder:
    """JSON lines as the whole-file path writes them, without a `default` call per timestamp:
    `discovered_at` is one instant for the run, launch times repeat (a cache of their text)."""

    def __init__(self, discovered_at: datetime) -> None:
        self.encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=json_default).encode
        self.discovered = json_default(discovered_at)
        self.discovered_at = discovered_at
        self.times: dict[datetime, str] = {}

    def line(self, row: dict) -> bytes:
        row = dict(row)
        if row.get("discovered_at") is self.discovered_at:
            row["discovered_at"] = self.discovered
        launched = row.get("launched_at")
        if isinstance(launched, datetime):
            text = self.times.get(launched)
            if text is None:
                text = self.times[launched] = json_default(launched)
            row["launched_at"] = text
        return (self.encode(row) + "\n").encode()


def _keep(row: dict, source: str, index: int | None, seen: dict, errors: list[RecordError]) -> bool:
    """Keep the first row of an asset id; a later one is an error naming both records."""
    asset_id = row["asset_id"]
    where = seen.get(asset_id)
    if where is not None:
        errors.append(RecordError(f"duplicate asset id {asset_id}: first seen at {_where(*where)}",
                                  source=source, index=index, record_id=asset_id))
        return False
    seen[asset_id] = (source, index)
    return True


def _rows_of(path: str, *, mapping: TagMapping, discovered_at: datetime, account: str | None,
             region: str | None) -> tuple[Iterator[tuple[dict, int | None]], list[RecordError]]:
    """(row, index) of one file, streamed; NotStreamable escapes from the iterator for the caller to retry."""
    from qlrf.inventory.normalize.aws import owned_instance_row

    errors: list[RecordError] = []

    def rows() -> Iterator[tuple[dict, int | None]]:
        with open(path, "rb") as handle:
            for index, owner, instance in ec2_instances(handle):
                try:
                    yield owned_instance_row(owner, instance, account, mapping, discovered_at), index
                except RECORD_FAULTS as exc:
                    reject(errors, exc, path, index, instance, "InstanceId")

    return rows(), errors


def _whole_rows(path: str, *, mapping: TagMapping, discovered_at: datetime, account: str | None,
                region: str | None) -> tuple[Iterator[tuple[dict, int | None]], list[RecordError]]:
    from qlrf.inventory.normalize.aws import normalise

    loaded = load_json_files([path])
    result = normalise(loaded.docs, mapping=mapping, discovered_at=discovered_at, account=account, region=region,
                       suspect=frozenset(loaded.suspect))
    result._align_origins()
    return ((row, index) for row, (_source, index) in zip(result.vms, result.origins, strict=True)), \
        loaded.errors + result.errors


def _normalise_file(path: str, scratch: str, options: dict) -> _FileDone:
    """Stream `path` into a spool file under `scratch`; a file the stream cannot take is read whole instead.
    Runs in a worker process when there are several files (module-level, so it pickles)."""
    with no_cyclic_gc(), tempfile.NamedTemporaryFile(dir=scratch, suffix=".jsonl", delete=False) as spool:
        encoder = _Encoder(options["discovered_at"])
        for reader in (_rows_of, _whole_rows):
            spool.seek(0)
            spool.truncate()
            seen: dict[str, tuple[str, int | None]] = {}
            ids: list[tuple[str, int | None]] = []
            errors: list[RecordError] = []
            try:
                rows, row_errors = reader(path, **options)
                for row, index in rows:
                    if _keep(row, path, index, seen, errors):
                        spool.write(encoder.line(row))
                        ids.append((row["asset_id"], index))
                errors[:0] = row_errors
                break
            except NotStreamable:
                continue
            except OSError as exc:
                ids, errors = [], [RecordError(f"cannot read JSON: {exc.strerror or exc}", source=path)]
                spool.truncate(0)
                break
    return _FileDone(path, spool.name, ids, errors)


def default_workers(paths: list[str], cpus: int | None = None) -> int:
    """Worker processes for `paths`: one per core when there are several large files (a worker's start
    costs ~0.1 s, a 30 MiB file ~3 s), else none (this process)."""
    import os

    cpus = cpus or os.cpu_count() or 1
    big = sum(1 for p in paths if os.path.isfile(p) and os.path.getsize(p) > 8 << 20)
    return min(cpus, big) if big > 1 else 0


def _merge(done: _FileDone, out: BinaryIO, first: dict, into: Written) -> None:
    """Copy one file's spool to `out` in order, refusing rows whose asset id an earlier file had."""
    into.errors += done.errors
    repeated = {n for n, (asset_id, _index) in enumerate(done.ids) if asset_id in first}
    with open(done.spool, "rb") as spool:
        if not repeated:
            shutil.copyfileobj(spool, out, 1 << 20)
        else:
            for n, line in enumerate(spool):
                if n not in repeated:
                    out.write(line)
    for n, (asset_id, index) in enumerate(done.ids):
        if n in repeated:
            into.errors.append(RecordError(f"duplicate asset id {asset_id}: first seen at {_where(*first[asset_id])}",
                                           source=done.path, index=index, record_id=asset_id))
        else:
            first[asset_id] = (done.path, index)
    into.rows += len(done.ids) - len(repeated)
    Path(done.spool).unlink()


def normalise_to(
    out: BinaryIO, platform: str, paths: Iterable[str | Path], *, mapping: TagMapping, discovered_at: datetime,
    account: str | None = None, region: str | None = None, snapshots: bool = False, workers: int | None = None,
) -> Written:
    """Write the normalised rows (VMs, or with `snapshots` the snapshot rows) of `paths` to `out` as JSON lines.

    EC2 files are normalised one per worker process when `workers` (default: default_workers) is
    above zero; the output is the same, in the same order, either way."""
    paths = [str(p) for p in paths]
    done = Written()
    if platform != "aws" or snapshots:
        result = normalise_files(platform, paths, mapping=mapping, discovered_at=discovered_at, account=account, region=region)
        encoder = _Encoder(discovered_at)
        chosen = result.snapshots if snapshots else result.vms
        with no_cyclic_gc():
            out.write(b"".join(encoder.line(r) for r in chosen))
        done.rows, done.errors = len(chosen), result.errors
        return done
    options = {"mapping": mapping, "discovered_at": discovered_at, "account": account, "region": region}
    workers = default_workers(paths) if workers is None else workers
    first: dict[str, tuple[str, int | None]] = {}
    with tempfile.TemporaryDirectory(prefix="qlrf-normalize-") as scratch:
        if workers > 0:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                futures = [pool.submit(_normalise_file, path, scratch, options) for path in paths]
                for future in futures:  # in file order, so the first row of an id is the one kept
                    _merge(future.result(), out, first, done)
        else:
            for path in paths:
                _merge(_normalise_file(path, scratch, options), out, first, done)
    return done
