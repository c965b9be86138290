"""Reading exports leniently only when they need it, screening records, and duplicate ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from qlrf.inventory.contract import Normalised
from qlrf.inventory.normalize import normalise_files
from qlrf.inventory.normalize.reading import DEFECT_PREFIX, Defect, _cap_depth, load_json_files, parse, screen

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def test_a_clean_file_takes_the_fast_path_and_is_not_suspect():
    doc, suspect = parse(json.dumps({"a": [1, 2.5, "é"]}).encode())
    assert doc == {"a": [1, 2.5, "é"]} and suspect is False


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'{"a": 1e400}', b'{"a": "\\ud800"}', b'{"a": "caf\xe9"}'])
def test_a_file_with_a_sign_of_trouble_is_suspect(raw):
    assert parse(raw)[1] is True


def test_non_finite_numbers_become_defects_that_cannot_be_stringified():
    doc, _ = parse(b'{"a": -Infinity, "b": 1e999, "c": 1.5}')
    assert isinstance(doc["a"], Defect) and isinstance(doc["b"], Defect) and doc["c"] == 1.5
    with pytest.raises(ValueError, match="Infinity"):
        str(doc["a"])


def test_a_utf8_bom_is_accepted():
    assert parse(b'\xef\xbb\xbf{"a": 1}') == ({"a": 1}, False)


def test_cap_depth_keeps_siblings_and_marks_the_deep_subtree():
    text = '[{"id": 1, "deep": ' + "[" * 10 + "]" * 10 + '}, {"id": 2}]'
    doc = json.loads(_cap_depth(text, limit=4))
    assert doc[1] == {"id": 2}
    assert doc[0]["deep"][0][0].startswith(DEFECT_PREFIX)


def test_cap_depth_ignores_brackets_inside_strings():
    text = '{"a": "[[[[[[", "b": [1]}'
    assert json.loads(_cap_depth(text, limit=2)) == {"a": "[[[[[[", "b": [1]}


def test_screen_names_the_field_path():
    with pytest.raises(ValueError, match=r"Tags\[1\]\.Value: .*UTF-8"):
        screen({"Tags": [{"Value": "ok"}, {"Value": "bad\udce9"}]})
    with pytest.raises(ValueError, match="nesting deeper"):
        screen({"x": [f"{DEFECT_PREFIX}nesting deeper than 64 levels"]})
    screen({"a": ["fine", 1, None, {"b": "ü"}]})


def test_load_reports_unreadable_and_non_json_files_one_error_each(tmp_path):
    good = tmp_path / "g.json"
    good.write_text("[]")
    junk = tmp_path / "j.json"
    junk.write_bytes(b"\xff\xfe\x00garbage")
    loaded = load_json_files([good, junk, tmp_path / "missing.json"])
    assert [s for s, _ in loaded.docs] == [str(good)]
    assert [e.source for e in loaded.errors] == [str(junk), str(tmp_path / "missing.json")]


def test_duplicates_keep_the_first_and_tolerate_rows_without_origin():
    out = Normalised()
    out.vms.append({"asset_id": "a"})  # as a live connector appends: no origin
    other = Normalised()
    other.add_vm({"asset_id": "a"}, "f.json", 3)
    other.add_vm({"asset_id": "b"}, "f.json", 4)
    out.extend(other)
    out.reject_duplicate_ids()
    assert [r["asset_id"] for r in out.vms] == ["a", "b"] and out.origins == [("", None), ("f.json", 4)]
    assert len(out.errors) == 1 and "f.json record #3 (a): duplicate asset id a: first seen at <input>" in str(out.errors[0])


def test_azure_wrong_container_types_are_rejected_per_record(tmp_path):
    vm = {"id": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/v", "vmId": "v1",
          "location": "westeurope", "name": "v", "powerState": "VM running"}
    docs = [vm, dict(vm, vmId="v2", tags=["a"]), dict(vm, vmId="v3", storageProfile="x"), ["not", "a", "vm"], dict(vm, vmId=2.5)]
    path = tmp_path / "az.json"
    path.write_text(json.dumps(docs))
    out = normalise_files("azure", [path], discovered_at=NOW)
    assert [r["asset_id"] for r in out.vms] == ["v1"]
    assert [(e.index, e.record_id) for e in out.errors] == [(1, "v2"), (2, "v3"), (3, ""), (4, "2.5")]


def test_vsphere_custom_value_that_is_an_object_is_rejected(tmp_path):
    def vm(uuid, value):
        return {"Config": {"InstanceUuid": uuid, "Name": uuid}, "Vcenter": "vc", "Datacenter": "dc",
                "AvailableField": [{"Key": 1, "Name": "owner"}], "CustomValue": [{"Key": 1, "Value": value}]}
    path = tmp_path / "vs.json"
    path.write_text(json.dumps({"VirtualMachines": [vm("u1", "team"), vm("u2", {"x": 1}), vm("u3", None)]}))
    out = normalise_files("vsphere", [path], discovered_at=NOW)
    assert [r["asset_id"] for r in out.vms] == ["u1"]
    assert [(e.index, e.record_id) for e in out.errors] == [(1, "u2"), (2, "u3")]


def test_gcp_aggregated_page_with_a_list_scope_is_one_file_error(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"items": {"zones/a": ["x"]}}))
    out = normalise_files("gcp", [path], discovered_at=NOW)
    assert out.vms == [] and len(out.errors) == 1 and "items.zones/a" in str(out.errors[0])
