"""Fault catalogue, S3 warehouse: a partition on an object store is replaced whole or not at all.

The warehouse's own pyarrow S3 client talks HTTP to a loopback moto server, through a proxy that
drops connections or answers 500/503 where a test says (tests/servers/s3_faults.py). Each fault must
leave the previous partition in force, byte for byte, raise PartitionWriteFailed naming the partition
and the cause, and keep the credentials out of messages and logs.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pyarrow as pa
import pytest

from qlrf.warehouse import PartitionWriteFailed, Warehouse
from qlrf.warehouse_s3 import S3Options, parse_s3_uri
from tests.fakes.base import free_port
from tests.servers.moto_server import FAKE_CREDENTIALS, start_moto_thread, use_loopback
from tests.servers.s3_faults import DROP, S3FaultProxy, is_copy, is_staging_put, times

pytestmark = pytest.mark.fault

BUCKET = "qlrf-warehouse"
DAY = "2026-11-20"
# Two attempts and short timeouts: a fault is retried once, and a test of an unreachable store takes
# tenths of a second, not the production minute.
FAST = {"max_attempts": 2, "connect_timeout": 1.0, "request_timeout": 5.0}


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    with start_moto_thread(default_amis=False) as url:
        yield url


@pytest.fixture()
def s3(moto, monkeypatch, tmp_path) -> Iterator[tuple[str, object]]:
    """A fresh bucket on moto and the loopback credentials in the environment (the AWS chain's first link)."""
    use_loopback(monkeypatch, moto, str(tmp_path))
    client = boto3.client("s3", endpoint_url=moto, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield moto, client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def warehouse(endpoint: str, **options) -> Warehouse:
    return Warehouse(f"s3://{BUCKET}/wh", s3=S3Options(endpoint_url=endpoint, region="us-east-1", **{**FAST, **options}))


def table(rows: int, tag: str) -> pa.Table:
    return pa.table({"asset_id": [f"vm-{i}" for i in range(rows)], "tag": [tag] * rows})


def keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def final_bytes(client) -> bytes:
    return client.get_object(Bucket=BUCKET, Key=f"wh/inventory/date={DAY}/platform=aws/part.parquet")["Body"].read()


def staged(client) -> list[str]:
    return [k for k in keys(client) if "/_staging/" in k and not k.endswith("/")]


def test_write_replaces_through_staging_and_leaves_only_the_partition(s3):
    url, client = s3
    with S3FaultProxy(url) as proxy:
        wh = warehouse(f"http://127.0.0.1:{proxy.port}")
        wh.write("inventory", table(3, "first"), DAY, "aws")
        wh.write("inventory", table(5, "second"), DAY, "aws")
        puts = [(r.method, "copy" if is_copy(r) else "staging" if is_staging_put(r) else r.path) for r in proxy.requests
                if r.method == "PUT" and not r.path.endswith("/")]
    assert wh.read("inventory", DAY, "aws")["tag"].to_pylist() == ["second"] * 5
    # Each write: one PUT of the staging key, one server-side copy onto the final key; never a PUT of the final key.
    assert [kind for _, kind in puts] == ["staging", "copy", "staging", "copy"]
    assert staged(client) == []
    assert wh.dates("inventory") == [DAY]


def test_a_reader_sees_the_previous_partition_until_the_copy(s3):
    """While the new file is uploading and being verified, the final key still holds the old one."""
    url, client = s3
    wh0 = warehouse(url)
    wh0.write("inventory", table(3, "old"), DAY, "aws")
    seen: list[list[str]] = []

    def peek(rec):
        if is_staging_put(rec) or is_copy(rec):
            seen.append(sorted(set(wh0.read("inventory", DAY, "aws")["tag"].to_pylist())))
        return None

    with S3FaultProxy(url, [peek]) as proxy:
        warehouse(f"http://127.0.0.1:{proxy.port}").write("inventory", table(4, "new"), DAY, "aws")
    assert seen == [["old"], ["old"]]  # at the staging PUT and at the copy request
    assert wh0.read("inventory", DAY, "aws")["tag"].to_pylist() == ["new"] * 4


def test_store_unreachable_mid_upload_fails_the_partition_and_keeps_the_previous(s3):
    url, client = s3
    warehouse(url).write("inventory", table(3, "old"), DAY, "aws")
    before = final_bytes(client)
    with S3FaultProxy(url, [times(is_staging_put, DROP, None)]) as proxy:
        with pytest.raises(PartitionWriteFailed) as failed:
            warehouse(f"http://127.0.0.1:{proxy.port}").write("inventory", table(9, "new"), DAY, "aws")
        dropped = [t for t in proxy.taken if t[2] == DROP]
    err = failed.value
    assert (err.table, err.partition) == ("inventory", f"{DAY}|aws")
    assert f"s3://{BUCKET}/wh/inventory/date={DAY}/platform=aws/part.parquet" in str(err)
    assert "still in force" in str(err) and err.cause  # and why: pyarrow's network error
    assert len(dropped) == FAST["max_attempts"]  # retried, then given up
    assert final_bytes(client) == before
    assert staged(client) == []


def test_store_gone_after_the_upload_leaves_previous_and_a_staging_key_the_sweep_removes(s3):
    """The copy and everything after it fail (the store went away between two requests)."""
    url, client = s3
    warehouse(url).write("inventory", table(3, "old"), DAY, "aws")
    before = final_bytes(client)
    down = {"now": False}

    def outage(rec):
        if is_copy(rec):
            down["now"] = True
        return DROP if down["now"] else None

    with S3FaultProxy(url, [outage]) as proxy, pytest.raises(PartitionWriteFailed, match=f"inventory partition {DAY}\\|aws"):
        warehouse(f"http://127.0.0.1:{proxy.port}").write("inventory", table(9, "new"), DAY, "aws")
    assert final_bytes(client) == before
    assert len(staged(client)) == 1  # the cleanup could not reach the store either
    wh = warehouse(url)
    assert wh.sweep_temporaries(datetime.now(UTC)) == []  # a writer may still be running: too fresh
    swept = wh.sweep_temporaries(datetime.now(UTC) + timedelta(hours=1))
    assert len(swept) == 1 and staged(client) == []
    assert wh.read("inventory", DAY, "aws")["tag"].to_pylist() == ["old"] * 3


def test_a_500_on_put_is_retried_and_the_write_lands(s3):
    url, client = s3
    with S3FaultProxy(url, [times(is_staging_put, (500, "InternalError"), 1)]) as proxy:
        warehouse(f"http://127.0.0.1:{proxy.port}").write("inventory", table(4, "new"), DAY, "aws")
        assert [t[2] for t in proxy.taken] == ["500"]
    assert warehouse(url).read("inventory", DAY, "aws").num_rows == 4
    assert staged(client) == []


def test_throttling_on_every_copy_fails_cleanly(s3):
    url, client = s3
    warehouse(url).write("inventory", table(3, "old"), DAY, "aws")
    before = final_bytes(client)
    with S3FaultProxy(url, [times(is_copy, (503, "SlowDown"), None)]) as proxy:
        with pytest.raises(PartitionWriteFailed) as failed:
            warehouse(f"http://127.0.0.1:{proxy.port}").write("inventory", table(9, "new"), DAY, "aws")
        assert [t[2] for t in proxy.taken] == ["503"] * FAST["max_attempts"]
    assert "SLOW_DOWN during CopyObject" in failed.value.cause
    assert final_bytes(client) == before
    assert staged(client) == []  # the store was reachable: the staging key was deleted


def test_unreachable_endpoint_fails_fast_naming_the_partition(s3):
    url, client = s3
    warehouse(url).write("inventory", table(3, "old"), DAY, "aws")
    before = final_bytes(client)
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PartitionWriteFailed, match=f"inventory partition {DAY}\\|aws"):
        warehouse(dead).write("inventory", table(9, "new"), DAY, "aws")
    assert final_bytes(client) == before


def test_credentials_never_reach_messages_or_logs(s3, caplog, capfd):
    url, _client = s3
    caplog.set_level(logging.DEBUG)
    messages = []
    with S3FaultProxy(url, [times(is_staging_put, (500, "InternalError"), None)]) as proxy:
        wh = warehouse(f"http://127.0.0.1:{proxy.port}")
        with pytest.raises(PartitionWriteFailed) as failed:
            wh.write("inventory", table(3, "x"), DAY, "aws")
        messages += [str(failed.value), repr(failed.value), repr(wh), repr(wh.s3)]
    out, err = capfd.readouterr()
    text = "\n".join([*messages, caplog.text, out, err])
    for secret in (FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"]):
        assert secret not in text


@pytest.mark.parametrize(("env", "expected"), [
    ({"QLRF_S3_ENDPOINT_URL": "ftp://minio:9000"}, "QLRF_S3_ENDPOINT_URL='ftp://minio:9000': expected http"),
    ({"QLRF_S3_ENDPOINT_URL": "http://minio:port"}, "QLRF_S3_ENDPOINT_URL: not a valid URL"),
    ({"QLRF_S3_ENDPOINT_URL": "http://minio:9000/bucket"}, "expected no path or query"),
    ({"QLRF_S3_ADDRESSING": "dns"}, "QLRF_S3_ADDRESSING='dns': expected one of auto, path, virtual"),
    ({"QLRF_S3_MAX_ATTEMPTS": "0"}, "QLRF_S3_MAX_ATTEMPTS='0'"),
    ({"QLRF_S3_CONNECT_TIMEOUT": "-1"}, "QLRF_S3_CONNECT_TIMEOUT='-1': expected a number of seconds > 0"),
    ({"QLRF_S3_REGION": "EU West"}, "QLRF_S3_REGION='EU West'"),
])
def test_bad_object_store_settings_name_the_variable(env, expected):
    with pytest.raises(ValueError) as bad:
        S3Options.from_env(env)
    assert expected in str(bad.value)


def test_a_password_in_the_endpoint_is_refused_without_echoing_it():
    with pytest.raises(ValueError, match="credentials do not belong in the URL") as bad:
        S3Options.from_env({"QLRF_S3_ENDPOINT_URL": "http://minio:s3cr3t-pw@minio:9000"})
    assert "s3cr3t-pw" not in str(bad.value)


@pytest.mark.parametrize(("uri", "expected"), [
    ("s3://My_Bucket/wh", "not a valid S3 bucket name"),
    ("s3://ab/wh", "not a valid S3 bucket name"),
    ("s3://qlrf-wh/a//b", "empty, '.' or '..' segment"),
    ("s3://qlrf-wh/wh?region=eu-west-1", "QLRF_S3_ENDPOINT_URL and QLRF_S3_REGION"),
    ("s3://AKIAKEY:secret@qlrf-wh/wh", "carries no credentials"),
])
def test_bad_warehouse_uris_are_refused(uri, expected):
    with pytest.raises(ValueError, match=expected) as bad:
        Warehouse(uri, s3=S3Options())
    assert "secret" not in str(bad.value).replace("carries no credentials", "")


def test_options_come_from_the_environment_when_the_warehouse_is_built(monkeypatch):
    monkeypatch.setenv("QLRF_S3_ENDPOINT_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("QLRF_S3_REGION", "eu-west-1")
    monkeypatch.setenv("QLRF_S3_ADDRESSING", "PATH")
    wh = Warehouse(f"s3://{BUCKET}/a/b/")
    assert wh.s3 == S3Options(endpoint_url="http://127.0.0.1:9", region="eu-west-1", addressing="path")
    assert wh.base == f"{BUCKET}/a/b" and not wh.local
    assert wh.uri("inventory", DAY, "aws") == f"s3://{BUCKET}/a/b/inventory/date={DAY}/platform=aws/part.parquet"
    assert parse_s3_uri(f"s3://{BUCKET}") == (BUCKET, "")


def test_scratch_space_is_released_after_a_failed_write(s3, monkeypatch, tmp_path):
    """The local temporary file the writer filled goes too (a long-running sensor would fill /tmp)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(PartitionWriteFailed):
        warehouse(f"http://127.0.0.1:{free_port()}").write("inventory", table(3, "x"), DAY, "aws")
    assert list(scratch.iterdir()) == []


def test_settings_refuse_a_bad_object_store_before_anything_runs(tmp_path):
    from qlrf.settings import Settings

    base = {"QLRF_HOME": str(tmp_path), "QLRF_WAREHOUSE": f"s3://{BUCKET}/wh"}
    assert Settings.from_env(base).warehouse == f"s3://{BUCKET}/wh"
    with pytest.raises(ValueError, match="QLRF_S3_ADDRESSING"):
        Settings.from_env({**base, "QLRF_S3_ADDRESSING": "dns"})
    with pytest.raises(ValueError, match="not a valid S3 bucket name"):
        Settings.from_env({**base, "QLRF_WAREHOUSE": "s3://Bad_Bucket/wh"})


def test_duckdb_source_is_a_local_copy_that_follows_replacements(s3):
    """source() hands DuckDB a local Parquet path; it outlives the Warehouse and tracks the object's version."""
    import pyarrow.parquet as pq

    url, _client = s3
    warehouse(url).write("inventory", table(3, "old"), DAY, "aws")
    first = warehouse(url).source("inventory", DAY, "aws")  # the Warehouse object is gone after this line
    assert isinstance(first, str) and pq.read_table(first)["tag"].to_pylist() == ["old"] * 3
    assert warehouse(url).source("inventory", DAY, "aws") == first  # same version: not fetched again
    warehouse(url).write("inventory", table(4, "new"), DAY, "aws")
    second = warehouse(url).source("inventory", DAY, "aws")
    assert second != first and pq.read_table(second)["tag"].to_pylist() == ["new"] * 4


def test_qlrf_run_with_an_unreachable_store_exits_2_naming_it(s3, monkeypatch, tmp_path, capsys):
    from datetime import date

    from pipelines.run import main as run_main

    monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("QLRF_WAREHOUSE", f"s3://{BUCKET}/wh")
    monkeypatch.setenv("QLRF_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("QLRF_S3_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("QLRF_S3_CONNECT_TIMEOUT", "1")
    assert run_main(["--date", DAY, "--in-process"], today=date(2026, 11, 21)) == 2
    err = capsys.readouterr().err
    assert f"the warehouse s3://{BUCKET}/wh cannot be reached" in err
    assert FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in err


def test_a_read_back_that_differs_is_not_published(s3):
    """The store answers the verification GET with other bytes (a corrupting middlebox): the final key keeps the old file."""
    url, client = s3
    warehouse(url).write("inventory", table(3, "old"), DAY, "aws")
    before = final_bytes(client)
    corrupt = times(lambda r: r.method == "GET" and "/_staging/" in r.path, (200, "NotTheObject"), None)
    with S3FaultProxy(url, [corrupt]) as proxy, pytest.raises(PartitionWriteFailed) as failed:
        warehouse(f"http://127.0.0.1:{proxy.port}").write("inventory", table(9, "new"), DAY, "aws")
    assert not any(is_copy(r) for r in proxy.requests)  # never copied onto the final key
    assert "_staging/" in failed.value.cause
    assert final_bytes(client) == before
    assert staged(client) == []
