"""The warehouse on an object store (QLRF_WAREHOUSE=s3://bucket/prefix): settings and atomic publication.

Why a module of its own: S3 has no rename, so "write a temporary name, then move it into place" (what
the local warehouse does) has to be rebuilt from what S3 does guarantee: a PUT or a server-side COPY
of one key is atomic (a reader gets the whole old object or the whole new one, never a mix). So a
partition is uploaded to a staging key, read back and verified (size, SHA-256, Parquet row count),
then server-side copied onto its final key in one CopyObject, and the staging key deleted. A failure
anywhere before the copy leaves the previous partition in force, byte for byte, and raises
PartitionWriteFailed naming the partition and the cause.

Credentials come only from the standard AWS chain (environment, shared config/credentials file,
container/instance roles) as pyarrow's S3 client resolves them: nothing here reads, holds or prints
a key, and the endpoint URL may not carry a user:password part (it would end up in messages).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from qlrf.envparse import environ, positive_int, redact_url, text

ADDRESSING = ("auto", "path", "virtual")
# Bucket names as S3 accepts them (general purpose buckets): 3-63 of a-z 0-9 . -, starting and ending alnum.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z0-9]+)+-\d+$|^[a-z0-9-]+$")
STAGING = "_staging"  # under the warehouse prefix: Hive readers skip names starting with "_"
_CHUNK = 8 << 20


class PartitionWriteFailed(OSError):
    """A partition could not be published to the warehouse; the previous one (if any) is still in force.

    Carries which partition (`table`, `partition`, `uri`) and why (`cause`, already free of credentials:
    pyarrow's S3 errors name the operation and the HTTP/network failure, never a key).
    """

    def __init__(self, table: str, partition: str, uri: str, cause: str) -> None:
        self.table, self.partition, self.uri, self.cause = table, partition, uri, cause
        super().__init__(f"{table} partition {partition} was not written to {uri}: {cause}; "
                         "the previous partition (if any) is still in force")


@dataclass(frozen=True)
class S3Options:
    """How to reach the object store; no credentials here (the AWS chain supplies them)."""

    endpoint_url: str | None = None  # QLRF_S3_ENDPOINT_URL: MinIO, moto, a VPC endpoint...; None = AWS
    region: str | None = None  # QLRF_S3_REGION, else AWS_REGION / AWS_DEFAULT_REGION
    addressing: str = "auto"  # QLRF_S3_ADDRESSING: path | virtual | auto (pyarrow's default)
    max_attempts: int = 3  # QLRF_S3_MAX_ATTEMPTS: per request, AWS standard retry (throttling, 5xx, resets)
    connect_timeout: float = 5.0  # QLRF_S3_CONNECT_TIMEOUT seconds: an unreachable store fails fast
    request_timeout: float = 60.0  # QLRF_S3_REQUEST_TIMEOUT seconds

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Options:
        """Read and check QLRF_S3_*; every error names the variable and never echoes a secret."""
        env = environ(env)
        endpoint = text(env, "QLRF_S3_ENDPOINT_URL")
        if endpoint is not None:
            try:
                parts = urlsplit(endpoint)
                parts.port  # noqa: B018 - raises on a port that is not a number
            except ValueError:
                raise ValueError(f"QLRF_S3_ENDPOINT_URL: not a valid URL (shown as {redact_url(endpoint)!r})") from None
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"QLRF_S3_ENDPOINT_URL={redact_url(endpoint)!r}: expected http(s)://host[:port]")
            if parts.username or parts.password:
                raise ValueError("QLRF_S3_ENDPOINT_URL: credentials do not belong in the URL (it appears in "
                                 "messages); use the AWS credential chain (AWS_ACCESS_KEY_ID..., a profile or a role)")
            if parts.path.strip("/") or parts.query:
                raise ValueError(f"QLRF_S3_ENDPOINT_URL={redact_url(endpoint)!r}: expected no path or query, "
                                 "only scheme, host and port")
        region = text(env, "QLRF_S3_REGION") or text(env, "AWS_REGION") or text(env, "AWS_DEFAULT_REGION")
        if region is not None and not _REGION.match(region):
            raise ValueError(f"QLRF_S3_REGION={region!r}: expected a region name such as eu-west-1")
        addressing = (text(env, "QLRF_S3_ADDRESSING") or "auto").lower()
        if addressing not in ADDRESSING:
            raise ValueError(f"QLRF_S3_ADDRESSING={env.get('QLRF_S3_ADDRESSING')!r}: expected one of {', '.join(ADDRESSING)}")
        return cls(
            endpoint_url=endpoint.rstrip("/") if endpoint else None,
            region=region,
            addressing=addressing,
            max_attempts=positive_int(text(env, "QLRF_S3_MAX_ATTEMPTS", "3"), "QLRF_S3_MAX_ATTEMPTS"),
            connect_timeout=_seconds(env, "QLRF_S3_CONNECT_TIMEOUT", 5.0),
            request_timeout=_seconds(env, "QLRF_S3_REQUEST_TIMEOUT", 60.0),
        )

    def filesystem(self) -> pafs.S3FileSystem:
        """pyarrow's S3 client with these options; credentials left to the AWS chain."""
        kwargs: dict = {
            "region": self.region,
            "connect_timeout": self.connect_timeout,
            "request_timeout": self.request_timeout,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=self.max_attempts),
            "check_directory_existence_before_creation": True,
        }
        if self.endpoint_url:
            parts = urlsplit(self.endpoint_url)
            kwargs["scheme"] = parts.scheme
            kwargs["endpoint_override"] = parts.netloc
        if self.addressing != "auto":
            kwargs["force_virtual_addressing"] = self.addressing == "virtual"
        return pafs.S3FileSystem(**{k: v for k, v in kwargs.items() if v is not None})


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    value = text(env, name)
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: expected a number of seconds > 0") from None
    if not seconds > 0:
        raise ValueError(f"{name}={value!r}: expected a number of seconds > 0")
    return seconds


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, prefix) of s3://bucket[/prefix], checked so a typo fails here, naming QLRF_WAREHOUSE."""
    parts = urlsplit(uri)
    if parts.username or parts.password or "@" in parts.netloc:
        raise ValueError("QLRF_WAREHOUSE: an s3:// URI carries no credentials; use the AWS credential chain")
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ValueError(f"QLRF_WAREHOUSE={uri!r}: {bucket!r} is not a valid S3 bucket name "
                         "(3-63 characters: lower-case letters, digits, dots and hyphens)")
    if parts.query or parts.fragment:
        raise ValueError(f"QLRF_WAREHOUSE={uri!r}: expected s3://bucket/prefix without ?query or #fragment "
                         "(endpoint and region go in QLRF_S3_ENDPOINT_URL and QLRF_S3_REGION)")
    if any(seg in ("", ".", "..") for seg in prefix.split("/")) and prefix:
        raise ValueError(f"QLRF_WAREHOUSE={uri!r}: the prefix has an empty, '.' or '..' segment")
    return bucket, prefix


@dataclass(frozen=True)
class LocalFile:
    """What the verified upload must match: the checked local file's size, digest and rows."""

    path: str
    size: int
    sha256: str
    rows: int

    @classmethod
    def of(cls, path: str) -> LocalFile:
        digest, size = hashlib.sha256(), 0
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return cls(path, size, digest.hexdigest(), pq.ParquetFile(path).metadata.num_rows)


def upload(fs: pafs.FileSystem, local: LocalFile, key: str) -> None:
    """One streamed upload of the local file to `key` (pyarrow picks single PUT or multipart by size)."""
    with open(local.path, "rb") as src, fs.open_output_stream(key) as out:
        while chunk := src.read(_CHUNK):
            out.write(chunk)


def verify(fs: pafs.FileSystem, local: LocalFile, key: str) -> None:
    """Read `key` back and compare with the local file; raises OSError saying what differs."""
    info = fs.get_file_info(key)
    if info.type != pafs.FileType.File:
        raise OSError(f"{key} is missing after its upload")
    if info.size != local.size:
        raise OSError(f"{key} holds {info.size} bytes after the upload, expected {local.size}")
    digest = hashlib.sha256()
    with fs.open_input_stream(key) as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != local.sha256:
        raise OSError(f"{key}: SHA-256 read back differs from the file uploaded")
    with fs.open_input_file(key) as handle:
        rows = pq.ParquetFile(handle).metadata.num_rows
    if rows != local.rows:
        raise OSError(f"{key} reads back {rows} rows, expected {local.rows}")


def publish(fs: pafs.FileSystem, local: LocalFile, staging: str, final: str) -> None:
    """Staging upload -> verify -> server-side copy onto `final` -> delete staging.

    The copy is the only step that touches `final`, and S3 applies a CopyObject whole or not at all,
    so a reader sees the previous partition until the new one is complete. The staging key is deleted
    whatever happens (best effort: an unreachable store leaves it to `sweep_staging`).
    """
    try:
        upload(fs, local, staging)
        verify(fs, local, staging)
        fs.copy_file(staging, final)
        after = fs.get_file_info(final)
        if after.size != local.size:
            raise OSError(f"{final} holds {after.size} bytes after the copy, expected {local.size}")
    finally:
        try:
            if fs.get_file_info(staging).type == pafs.FileType.File:
                fs.delete_file(staging)
        except OSError:
            pass  # the store went away: the staging key is swept later, the final key is untouched
