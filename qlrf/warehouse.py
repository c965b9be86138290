"""The Parquet warehouse: one file per asset partition, on local disk or any pyarrow filesystem (S3).

Layout: <root>/<table>/date=YYYY-MM-DD/[platform=P/]part.parquet (Hive-style, so DuckDB, Spark
and Athena read it as is). On local disk writes go to a temporary name and are renamed into place, so
a reader never sees a half-written partition. Object stores have no rename: a partition is uploaded
to a staging key, read back and verified, then server-side copied onto its final key
(qlrf.warehouse_s3), with the same guarantee.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from qlrf.quality import Gate, PartitionRejected
from qlrf.warehouse_s3 import STAGING, LocalFile, PartitionWriteFailed, S3Options, parse_s3_uri, publish

__all__ = ["PART", "PartitionMissing", "PartitionWriteFailed", "Warehouse"]

PART = "part.parquet"
# Remote partitions DuckDB scans are copied to one cache directory per process (Warehouse.source),
# removed at exit; a superseded copy goes after this many seconds (a scan may still have it open).
CACHE_GRACE_S = 600
_CACHE: tempfile.TemporaryDirectory | None = None
_CACHE_LOCK = threading.Lock()


def _cache_dir() -> str:
    """Created on first use, not at import; lives as long as the process (a path handed to DuckDB must
    outlive the Warehouse object that produced it)."""
    global _CACHE
    with _CACHE_LOCK:
        if _CACHE is None:
            _CACHE = tempfile.TemporaryDirectory(prefix="qlrf-wh-cache-")
        return _CACHE.name


class PartitionMissing(FileNotFoundError):
    """An upstream partition that has not been materialised; says which, so the user can run it."""


@dataclass
class Warehouse:
    """`s3`: how to reach an s3:// root; None reads QLRF_S3_* when the warehouse is built (not at import)."""

    root: str
    s3: S3Options | None = None

    def __post_init__(self) -> None:
        if self.root.lower().startswith("s3://"):
            bucket, prefix = parse_s3_uri(self.root)
            self.s3 = self.s3 or S3Options.from_env()
            self.fs, self.base, self.local = self.s3.filesystem(), f"{bucket}/{prefix}".rstrip("/"), False
        elif "://" in self.root:
            self.fs, self.base = pafs.FileSystem.from_uri(self.root)
            self.local = isinstance(self.fs, pafs.LocalFileSystem)
        else:
            self.fs, self.base, self.local = pafs.LocalFileSystem(), str(self.root), True
        self.base = self.base.rstrip("/")

    def partition_dir(self, table: str, day: date | str, platform: str | None = None) -> str:
        path = f"{self.base}/{table}/date={day if isinstance(day, str) else day.isoformat()}"
        return f"{path}/platform={platform}" if platform else path

    def file(self, table: str, day: date | str, platform: str | None = None) -> str:
        return f"{self.partition_dir(table, day, platform)}/{PART}"

    def uri(self, table: str, day: date | str, platform: str | None = None) -> str:
        path = self.file(table, day, platform)
        return path if self.local else f"{self.root.split('://')[0]}://{path}"

    def write(
        self, table: str, data: pa.Table, day: date | str, platform: str | None = None, *, metadata: dict | None = None,
        gate: Gate | None = None,
    ) -> str:
        meta = dict(data.schema.metadata or {})
        meta.update({k.encode(): v.encode() for k, v in self.file_metadata(table, day, platform, metadata).items()})
        data = data.replace_schema_metadata(meta)

        def writer(path: str, filesystem) -> None:
            pq.write_table(data, path, filesystem=filesystem, compression="zstd")

        return self.write_with(table, day, platform, writer, gate=gate)

    @staticmethod
    def file_metadata(table: str, day: date | str, platform: str | None, metadata: dict | None) -> dict[str, str]:
        """Key-value metadata every partition file carries: which partition, and the run's facts."""
        meta = {"qlrf.partition": json.dumps({"table": table, "date": str(day), "platform": platform})}
        if metadata:
            meta["qlrf.run"] = json.dumps(metadata, default=str)
        return meta

    def write_with(self, table: str, day: date | str, platform: str | None, writer, *, gate: Gate | None = None) -> str:
        """Run `writer(path, filesystem)` against a temporary name, check it, then move it into place.

        Lets DuckDB's COPY stream a partition straight to Parquet without a detour through Python.
        With a `gate`, the temporary file is checked first (qlrf.quality): a refused partition is
        deleted and PartitionRejected raised, so the previous file stays in force, byte for byte.
        On object stores the writer fills a local temporary file that is checked, then published through
        a staging key (qlrf.warehouse_s3.publish): any failure there raises PartitionWriteFailed and
        leaves the previous partition in force.
        """
        directory = self.partition_dir(table, day, platform)
        final = f"{directory}/{PART}"
        if self.local:
            self.fs.create_dir(directory, recursive=True)
            tmp = f"{directory}/.{uuid.uuid4().hex}.tmp"
            try:
                writer(tmp, self.fs)
                self._check(gate, tmp, table, day, platform)
                self.fs.move(tmp, final)
            finally:
                if self.fs.get_file_info(tmp).type == pafs.FileType.File:
                    self.fs.delete_file(tmp)
            return final
        with tempfile.TemporaryDirectory() as scratch:
            local = f"{scratch}/{PART}"
            writer(local, pafs.LocalFileSystem())
            self._check(gate, local, table, day, platform)
            where = f"{day}" + (f"|{platform}" if platform else "")
            staging = f"{self.base}/{STAGING}/{uuid.uuid4().hex}.{table}.tmp"
            try:
                publish(self.fs, LocalFile.of(local), staging, final)
            except (OSError, pa.ArrowException) as exc:  # ArrowInvalid: the read-back is not Parquet
                raise PartitionWriteFailed(table, where, self.uri(table, day, platform), str(exc)) from exc
        return final

    def _check(self, gate: Gate | None, local_path: str, table: str, day: date | str, platform: str | None) -> None:
        if gate is None:
            return
        previous = self.previous(table, day, platform)
        rows, where = (previous[1], previous[0]) if previous else (None, "")
        problems = gate.problems(local_path, rows, where)
        if problems:
            raise PartitionRejected(table, f"{day}" + (f"|{platform}" if platform else ""), problems)

    def previous(self, table: str, day: date | str, platform: str | None = None, max_age_days: int = 7) -> tuple[str, int] | None:
        """(which, rows) of the partition a new one is compared with: the same partition's current file,
        else the newest earlier day's (within `max_age_days`); None when there is neither."""
        day_s = day if isinstance(day, str) else day.isoformat()
        if self.exists(table, day_s, platform):
            return f"the current {day_s} partition", self.num_rows(table, day_s, platform)
        earlier = [d for d in self.dates(table) if d < day_s and self.exists(table, d, platform)]
        if earlier and (date.fromisoformat(day_s) - date.fromisoformat(earlier[-1])).days <= max_age_days:
            return f"{earlier[-1]}", self.num_rows(table, earlier[-1], platform)
        return None

    def num_rows(self, table: str, day: date | str, platform: str | None = None) -> int:
        with self.fs.open_input_file(self.file(table, day, platform)) as handle:
            return pq.ParquetFile(handle).metadata.num_rows

    def sweep_temporaries(self, now: datetime, older_than: timedelta = timedelta(minutes=30)) -> list[str]:
        """Delete the temporary files a killed writer left behind; returns their paths.

        Only files older than `older_than` go, so a writer still running in another process keeps
        its file (a partition streams to its temporary name in seconds, not minutes).
        """
        if not self.local:
            return self._sweep_staging(now, older_than)
        selector = pafs.FileSelector(self.base, recursive=True, allow_not_found=True)
        stale = [
            info.path
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.base_name.startswith(".") and info.base_name.endswith(".tmp")
            and info.mtime is not None and now - info.mtime.astimezone(UTC) > older_than
        ]
        for path in stale:
            self.fs.delete_file(path)
        return stale

    def _sweep_staging(self, now: datetime, older_than: timedelta) -> list[str]:
        """Object stores: staging keys a killed or cut-off writer left under <prefix>/_staging."""
        selector = pafs.FileSelector(f"{self.base}/{STAGING}", allow_not_found=True)
        stale = [info.path for info in self.fs.get_file_info(selector)
                 if info.type == pafs.FileType.File and info.mtime is not None
                 and now - info.mtime.astimezone(UTC) > older_than]
        for path in stale:
            self.fs.delete_file(path)
        return stale

    def exists(self, table: str, day: date | str, platform: str | None = None) -> bool:
        return self.fs.get_file_info(self.file(table, day, platform)).type == pafs.FileType.File

    def read(self, table: str, day: date | str, platform: str | None = None, columns: list[str] | None = None) -> pa.Table:
        path = self.file(table, day, platform)
        if not self.exists(table, day, platform):
            where = f"{day}" + (f"|{platform}" if platform else "")
            raise PartitionMissing(f"{table} partition {where} has not been materialised ({path})")
        # One file, read as one file: pq.read_table goes through pyarrow.dataset, whose import pulls in
        # pandas (~0.4 s of every `qlrf report`); the table read is the same, schema metadata included.
        with self.fs.open_input_file(path) as handle:
            return pq.ParquetFile(handle).read(columns=columns)

    def source(self, table: str, day: date | str, platform: str | None = None) -> str | pa.Table:
        """What DuckDB should scan: a local Parquet file path (streamed, column-pruned).

        Remote partitions are copied to the process's local cache first (`_cached`), so DuckDB reads the very same
        Parquet file as on disk: a registered Arrow table would lose the file's NOT NULL columns and make
        the S3 warehouse write different schemas from the local one (and hold whole tables in memory).
        """
        if not self.exists(table, day, platform):
            self.read(table, day, platform)  # raises PartitionMissing with the details
        if self.local:
            return self.file(table, day, platform)
        return self._cached(self.file(table, day, platform))

    def _cached(self, path: str) -> str:
        """A local copy of remote `path` in the process's cache, fetched again when the object's size,
        mtime or Parquet footer (run facts, column statistics) changed. Copies of older versions go once
        they are CACHE_GRACE_S old, so a scan that was handed one a moment ago can still open it."""
        info = self.fs.get_file_info(path)
        with self.fs.open_input_file(path) as handle:  # the footer too: S3 mtimes have 1 s resolution
            footer = pq.ParquetFile(handle).metadata
        facts = f"{info.size}|{info.mtime}|{footer.to_dict()}|{footer.metadata}"
        stamp = hashlib.sha256(facts.encode()).hexdigest()[:16]
        key = hashlib.sha256(f"{self.root}|{path}".encode()).hexdigest()[:32]
        cache = _cache_dir()
        local = os.path.join(cache, f"{key}-{stamp}.parquet")
        if not os.path.exists(local):
            partial = f"{local}.{uuid.uuid4().hex}.part"
            pafs.copy_files(path, partial, source_filesystem=self.fs, destination_filesystem=pafs.LocalFileSystem())
            os.replace(partial, local)  # a concurrent reader of the same partition sees the whole file or none
            for old in os.listdir(cache):
                old_path = os.path.join(cache, old)
                if old.startswith(key) and old_path != local and time.time() - os.path.getmtime(old_path) > CACHE_GRACE_S:
                    with contextlib.suppress(OSError):
                        os.remove(old_path)
        return local

    def read_platforms(self, table: str, day: date | str, platforms: list[str] | tuple[str, ...]) -> pa.Table:
        """All present platform partitions of a day; a missing platform is simply absent."""
        tables = [self.read(table, day, p) for p in platforms if self.exists(table, day, p)]
        if not tables:
            raise PartitionMissing(f"{table}: no platform partition materialised for {day}")
        return pa.concat_tables(tables, promote_options="default")

    def run_metadata(self, table: str, day: date | str, platform: str | None = None) -> dict:
        meta = pq.read_schema(self.file(table, day, platform), filesystem=self.fs).metadata or {}
        return json.loads(meta.get(b"qlrf.run", b"{}"))

    def latest_on_or_before(self, table: str, day: date | str, max_age_days: int | None = None) -> str | None:
        """The newest date partition of a daily table at or before `day` (e.g. the baseline in force)."""
        day_s = day if isinstance(day, str) else day.isoformat()
        candidates = [d for d in self.dates(table) if d <= day_s and self.exists(table, d)]
        if not candidates:
            return None
        newest = candidates[-1]
        if max_age_days is not None and (date.fromisoformat(day_s) - date.fromisoformat(newest)).days > max_age_days:
            return None
        return newest

    def dates(self, table: str) -> list[str]:
        selector = pafs.FileSelector(f"{self.base}/{table}", allow_not_found=True)
        return sorted(
            info.base_name.split("=", 1)[1]
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.Directory and info.base_name.startswith("date=")
        )
