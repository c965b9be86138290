"""Streaming EC2 normalisation (qlrf.inventory.normalize.stream) gives what the whole-file path gives.

Same rows in the same order, same errors, whatever the file holds and wherever the chunk boundaries
fall; a file that fails halfway writes nothing of its own."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import pytest

from qlrf.inventory.contract import json_default
from qlrf.inventory.normalize import normalise_files, stream
from qlrf.inventory.sample import generate_estate
from qlrf.inventory.tags import TagMapping

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def _ec2(iid: str, **extra) -> str:
    inst = {"InstanceId": iid, "ImageId": "ami-1", "LaunchTime": "2026-10-01T08:30:00+00:00",
            "Placement": {"AvailabilityZone": "eu-west-1a"}, "State": {"Name": "running"},
            "Tags": [{"Key": "Name", "Value": iid}, {"Key": "site", "Value": "lön1"}], "CpuOptions": {"Threads": 2.0}}
    inst.update(extra)
    return json.dumps(inst, ensure_ascii=False)


def _doc(*instances: str, owner: str = '"111122223333"', extra: str = "") -> str:
    return '{"Reservations": [{"OwnerId": ' + owner + ', "Instances": [' + ", ".join(instances) + "]}]" + extra + "}"


def _old(paths, mapping):
    out = normalise_files("aws", paths, mapping=mapping, discovered_at=NOW)
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=json_default).encode
    return "".join(encode(r) + "\n" for r in out.vms), sorted(str(e) for e in out.errors)


def _new(paths, mapping, workers=0):
    buf = io.BytesIO()
    written = stream.normalise_to(buf, "aws", paths, mapping=mapping, discovered_at=NOW, workers=workers)
    text = buf.getvalue().decode()
    assert written.rows == text.count("\n")
    return text, sorted(str(e) for e in written.errors)


CASES = {
    "clean, pretty-printed, with NextToken": json.dumps(json.loads(_doc(_ec2("i-1"), _ec2("i-2"))) | {"NextToken": None}, indent=2),
    "two reservations": '{"Reservations": [' + _doc(_ec2("i-1"))[17:-2] + ", " + _doc(_ec2("i-2"))[17:-2] + "]}",
    "non-UTF-8 bytes in one record": _doc(_ec2("i-1"), _ec2("i-2", ImageId="ami-\udcff")),
    "surrogate escape": _doc(_ec2("i-1"), _ec2("i-2").replace('"ami-1"', '"ami-\\udc00"')),
    "NaN as an id": _doc(_ec2("i-1"), '{"InstanceId": NaN}'),
    "overflowing number": _doc(_ec2("i-1"), '{"InstanceId": 1e400}'),
    "deep nesting": _doc(_ec2("i-1"), _ec2("i-2", Deep=json.loads("[" * 200 + "]" * 200))),
    "dict where the instance list belongs": '{"Reservations": [{"OwnerId": "1", "Instances": {"a": 1}}]}',
    "duplicate id within the file": _doc(_ec2("i-1"), _ec2("i-1"), _ec2("i-3")),
    "truncated file": _doc(_ec2("i-7"), _ec2("i-8"))[:-40],
    "a snapshots document": '{"Snapshots": []}',
    "record faults": _doc(_ec2("i-1", Placement=[]), _ec2("i-2", Tags=[{"Key": "x", "Value": None}]), _ec2("i-3")),
    "no owner": _doc(_ec2("i-1"), owner="null"),
    "not JSON": "hello",
}


@pytest.mark.parametrize("chunk", [7, 1 << 22])
@pytest.mark.parametrize("case", sorted(CASES))
def test_streaming_equals_the_whole_file_path(tmp_path, monkeypatch, case, chunk):
    monkeypatch.setattr(stream, "CHUNK", chunk)
    bad = tmp_path / "bad.json"
    text = CASES[case]
    bad.write_bytes(text.encode("utf-8", "surrogateescape") if "\udcff" in text else text.encode())
    other = tmp_path / "other.json"
    other.write_text(_doc(_ec2("i-1"), _ec2("i-9")))  # i-1 again: duplicates across files keep the first
    paths = [bad, other]
    old_rows, old_errors = _old(paths, TagMapping())
    new_rows, new_errors = _new(paths, TagMapping())
    assert new_rows == old_rows
    assert new_errors == old_errors
    assert "i-9" in new_rows


def test_a_file_that_fails_halfway_writes_none_of_its_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "CHUNK", 64)  # rows of the first instances are parsed before the fault
    bad = tmp_path / "bad.json"
    bad.write_text(_doc(*[_ec2(f"i-{n}") for n in range(20)])[:-30])
    rows, errors = _new([bad], TagMapping())
    assert rows == ""
    assert len(errors) == 1 and "cannot read JSON" in errors[0]


def test_streaming_equals_the_whole_file_path_on_the_sample_estate(tmp_path):
    generate_estate(tmp_path, date(2026, 11, 27), counts={"aws": 600})
    paths = sorted((tmp_path / "raw").glob("aws-*-instances.json"))
    mapping = TagMapping.from_file(None)
    old_rows, old_errors = _old(paths, mapping)
    new_rows, new_errors = _new(paths, mapping)
    assert old_rows.count("\n") > 500
    assert new_rows == old_rows and new_errors == old_errors


@pytest.mark.slow
def test_worker_processes_give_the_same_output_in_file_order(tmp_path):
    files = []
    for n in range(4):  # i-dup in every file: only the first file's row is kept, the rest name it
        path = tmp_path / f"f{n}.json"
        path.write_text(_doc(*[_ec2(f"i-{n}-{k}") for k in range(50)], _ec2("i-dup")))
        files.append(path)
    files.insert(2, tmp_path / "missing.json")
    sequential = _new(files, TagMapping(), workers=0)
    parallel = _new(files, TagMapping(), workers=2)
    assert parallel == sequential
    assert sequential == _old(files, TagMapping())
    assert sum("duplicate asset id i-dup" in e for e in parallel[1]) == 3


def test_workers_only_for_several_large_files(tmp_path):
    small = tmp_path / "small.json"
    small.write_text("{}")
    assert stream.default_workers([str(small)] * 3, cpus=2) == 0
