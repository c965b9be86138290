"""Fault catalogue, normalisers: one hostile or broken input per test; the rest of the input survives.

Each attempt names what it tries. "Held" means: the bad record is rejected with its file, index and
id, every good record of the same file and of the other files is still produced, nothing raises.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from qlrf import cli
from qlrf.inventory.normalize import normalise_files
from qlrf.inventory.tags import TagMapping

pytestmark = pytest.mark.fault

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def _ec2(iid: str, **extra) -> dict:
    inst = {
        "InstanceId": iid,
        "ImageId": "ami-1",
        "LaunchTime": "2026-10-01T08:30:00+00:00",
        "Placement": {"AvailabilityZone": "eu-west-1a"},
        "State": {"Name": "running"},
        "Tags": [{"Key": "Name", "Value": iid}],
    }
    inst.update(extra)
    return inst


def _aws_text(*instances_json: str) -> str:
    """An EC2 export whose instances are given as raw JSON text, so a test can plant bytes json.dumps would not write."""
    return '{"Reservations": [{"OwnerId": "111122223333", "Instances": [' + ", ".join(instances_json) + "]}]}"


def _write(path, text: str | bytes):
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


@pytest.fixture()
def good_file(tmp_path):
    return _write(tmp_path / "good.json", _aws_text(json.dumps(_ec2("i-other"))))


def _run(files) -> tuple[set[str], list]:
    out = normalise_files("aws", files, mapping=TagMapping(), discovered_at=NOW)
    return {r["asset_id"] for r in out.vms}, out.errors


def _held(tmp_path, good_file, bad_instance_text: str, bad_id: str, *, index: int = 1):
    bad = _write(tmp_path / "bad.json", _aws_text(json.dumps(_ec2("i-before")), bad_instance_text, json.dumps(_ec2("i-after"))))
    ids, errors = _run([bad, good_file])
    assert ids == {"i-before", "i-after", "i-other"}
    assert len(errors) == 1, [str(e) for e in errors]
    err = errors[0]
    assert (err.source, err.index) == (str(bad), index)
    assert bad_id in err.record_id
    return err


def test_non_utf8_bytes_in_one_record(tmp_path, good_file):
    bad = _write(
        tmp_path / "bad.json",
        _aws_text(json.dumps(_ec2("i-before"))).encode()[:-4]
        + b', {"InstanceId": "i-latin1", "ImageId": "ami-1", "LaunchTime": "2026-10-01T08:30:00+00:00", '
        b'"Placement": {"AvailabilityZone": "eu-west-1a"}, "State": {"Name": "running"}, '
        b'"Tags": [{"Key": "Name", "Value": "caf\xe9"}]}, ' + json.dumps(_ec2("i-after")).encode() + b"]}]}",
    )
    ids, errors = _run([bad, good_file])
    assert ids == {"i-before", "i-after", "i-other"}
    assert [(e.source, e.index, e.record_id) for e in errors] == [(str(bad), 1, "i-latin1")]
    assert "UTF-8" in str(errors[0])


def test_lone_surrogate_escape_in_one_record(tmp_path, good_file):
    err = _held(tmp_path, good_file, json.dumps(_ec2("i-sur", Tags=[{"Key": "Name", "Value": "x"}])).replace('"x"', '"\\ud800"'), "i-sur")
    assert "UTF-8" in str(err)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_number_as_instance_id(tmp_path, good_file, constant):
    text = json.dumps(_ec2("PLACEHOLDER", Tags=[])).replace('"PLACEHOLDER"', constant)
    bad = _write(tmp_path / "bad.json", _aws_text(json.dumps(_ec2("i-before")), text, json.dumps(_ec2("i-after"))))
    ids, errors = _run([bad, good_file])
    assert ids == {"i-before", "i-after", "i-other"}
    assert [(e.source, e.index) for e in errors] == [(str(bad), 1)]
    assert "InstanceId" in str(errors[0])


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00"])
def test_year_at_the_edge_with_an_offset(tmp_path, good_file, stamp):
    err = _held(tmp_path, good_file, json.dumps(_ec2("i-edge", LaunchTime=stamp)), "i-edge")
    assert "LaunchTime" in str(err)


def test_dict_where_the_reservation_list_belongs(tmp_path, good_file):
    bad = _write(tmp_path / "bad.json", json.dumps({"Reservations": {"OwnerId": "1", "Instances": []}}))
    ids, errors = _run([bad, good_file])
    assert ids == {"i-other"}
    assert [e.source for e in errors] == [str(bad)] and "Reservations" in str(errors[0])


def test_dict_where_the_instance_list_belongs(tmp_path, good_file):
    doc = {"Reservations": [{"OwnerId": "1", "Instances": _ec2("i-x")}, {"OwnerId": "1", "Instances": [_ec2("i-ok")]}]}
    bad = _write(tmp_path / "bad.json", json.dumps(doc))
    ids, errors = _run([bad, good_file])
    assert ids == {"i-ok", "i-other"}
    assert len(errors) == 1 and "Instances" in str(errors[0]) and errors[0].source == str(bad)


def test_list_where_the_placement_object_belongs(tmp_path, good_file):
    _held(tmp_path, good_file, json.dumps(_ec2("i-list", Placement=["eu-west-1a"])), "i-list")


def test_list_where_the_instance_object_belongs(tmp_path, good_file):
    bad = _write(tmp_path / "bad.json", _aws_text(json.dumps(_ec2("i-before")), '["i-list"]', json.dumps(_ec2("i-after"))))
    ids, errors = _run([bad, good_file])
    assert ids == {"i-before", "i-after", "i-other"}
    assert [(e.source, e.index) for e in errors] == [(str(bad), 1)]


def test_deep_nesting_in_one_record(tmp_path, good_file):
    deep = "[" * 100_000 + "]" * 100_000
    text = json.dumps(_ec2("i-deep", Junk="X")).replace('"X"', deep)
    err = _held(tmp_path, good_file, text, "i-deep")
    assert "nest" in str(err)


@pytest.mark.parametrize("value", [None, {"a": "b"}, ["x"]])
def test_tag_value_that_is_not_text(tmp_path, good_file, value):
    err = _held(tmp_path, good_file, json.dumps(_ec2("i-tag", Tags=[{"Key": "Owner", "Value": value}])), "i-tag")
    assert "Owner" in str(err)


@pytest.mark.parametrize("labels", [{"owner": None}, {"owner": {"team": "x"}}])
def test_gcp_label_value_that_is_not_text(tmp_path, labels):
    good = {"id": "1", "name": "a", "zone": "projects/p/zones/europe-west1-b", "status": "RUNNING", "kind": "compute#instance"}
    bad = dict(good, id="2", labels=labels)
    path = _write(tmp_path / "g.json", json.dumps([good, bad]))
    out = normalise_files("gcp", [path], mapping=TagMapping(), discovered_at=NOW)
    assert [r["asset_id"] for r in out.vms] == ["1"]
    assert [(e.source, e.index, e.record_id) for e in out.errors] == [(str(path), 1, "2")]


def test_duplicate_asset_id_across_files_names_both_records(tmp_path, good_file):
    second = _write(tmp_path / "second.json", _aws_text(json.dumps(_ec2("i-new")), json.dumps(_ec2("i-other"))))
    ids, errors = _run([good_file, second])
    assert ids == {"i-other", "i-new"}
    assert len(errors) == 1
    err = errors[0]
    assert (err.source, err.index, err.record_id) == (str(second), 1, "i-other")
    assert f"{good_file} record #0" in str(err)


def test_duplicate_asset_id_within_one_file(tmp_path):
    path = _write(tmp_path / "dup.json", _aws_text(json.dumps(_ec2("i-1")), json.dumps(_ec2("i-1"))))
    ids, errors = _run([path])
    assert ids == {"i-1"}
    assert len(errors) == 1 and "duplicate" in str(errors[0]) and "record #0" in str(errors[0])


def test_file_that_is_not_json_at_all(tmp_path, good_file):
    junk = _write(tmp_path / "junk.json", b"\x89PNG\r\n\x1a\n\x00\x00binary")
    ids, errors = _run([junk, good_file])
    assert ids == {"i-other"}
    assert len(errors) == 1 and errors[0].source == str(junk) and errors[0].index is None


def test_tag_mapping_string_where_a_list_belongs(tmp_path):
    path = _write(tmp_path / "m.yaml", "keys:\n  owner: team\n")
    with pytest.raises(ValueError, match=r"keys\.owner"):
        TagMapping.from_file(path)


@pytest.mark.parametrize(
    ("text", "field"),
    [("- a\n- b\n", "top level"), ("keys: [owner]\n", "keys"), ("environment_aliases: {prod: [a]}\n", "environment_aliases.prod"),
     ("keys:\n  owner: [1, {a: b}]\n", "keys.owner"), ("kes: {}\n", "kes"), ("keys: {owner: [a\n", "YAML")],
)
def test_tag_mapping_wrong_shapes(tmp_path, text, field):
    path = _write(tmp_path / "m.yaml", text)
    with pytest.raises(ValueError, match=rf"{path}.*{field}"):
        TagMapping.from_file(path)


def test_cli_tag_mapping_error_is_one_line_exit_2(tmp_path, good_file, capsys, isolated_env):
    mapping = _write(tmp_path / "m.yaml", "keys:\n  owner: team\n")
    code = cli.main(["inventory", "normalize", "--platform", "aws", "--tag-mapping", str(mapping), str(good_file)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and str(mapping) in err[0] and "keys.owner" in err[0] and "Traceback" not in err[0]


def test_cli_missing_tag_mapping_file_exit_2(tmp_path, good_file, capsys, isolated_env):
    code = cli.main(["inventory", "normalize", "--platform", "aws", "--tag-mapping", str(tmp_path / "nope.yaml"), str(good_file)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "nope.yaml" in err[0]


def test_cli_no_usable_file_exit_2(tmp_path, capsys, isolated_env):
    junk = _write(tmp_path / "junk.json", b"not json")
    code = cli.main(["inventory", "normalize", "--platform", "aws", str(junk), str(tmp_path / "missing.json")])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "junk.json" in captured.err and "missing.json" in captured.err and "Traceback" not in captured.err


def test_cli_one_bad_record_exit_1_rest_printed(tmp_path, good_file, capsys, isolated_env):
    bad = _write(tmp_path / "bad.json", _aws_text(json.dumps(_ec2("i-before")), json.dumps(_ec2("i-edge", LaunchTime="9999-12-31T23:00:00-05:00"))))
    code = cli.main(["inventory", "normalize", "--platform", "aws", str(bad), str(good_file)])
    captured = capsys.readouterr()
    assert code == 1
    assert {json.loads(line)["asset_id"] for line in captured.out.splitlines()} == {"i-before", "i-other"}
    assert "bad.json record #1 (i-edge)" in captured.err
