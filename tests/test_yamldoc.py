"""qlrf.yamldoc: block YAML written without PyYAML's representer must load back to the same document."""

from __future__ import annotations

import pytest
import yaml

from qlrf import yamldoc

TRICKY = ["yes", "No", "ON", "off", "true", "NULL", "~", "y", "1.0", "1e3", "0x1f", "0o17", "1_000", "1:20", "2026-11-27",
          "2026-11-27T00:00:00Z", "a: b", "a #b", "#x", "", " lead", "trail ", "-", "- x", "? q", "café", "l\nm", "x\r\ny",
          "tab\there", "\x85", "\u2028", "'q'", '"dq"', "a]b", "{x}", "[x]", "@a", "!t", "&a", "*a", "%d", "`b", "<<", "=",
          ".inf", ".nan", "i-0001", "ami-0a1b/c_d.e", "x" * 300, "emoji \U0001f600"]


def test_tricky_strings_and_numbers_load_back_to_the_same_values():
    doc = {"strings": TRICKY, "numbers": [0, -7, 10**20, 1.5, 1e-05, 1e16, -0.0, float("inf"), float("-inf")],
           "others": [True, False, None, {}, [], [[1, 2], []], {"k k": {"x": [{"y": 1, "z": [{}]}]}}],
           "yes": "key that is a YAML word", "": "empty key", "1.0": 1.0}
    assert yaml.safe_load(yamldoc.dump(doc)) == doc


def test_every_scalar_sits_on_one_line_so_nesting_stays_valid():
    doc = {"a": [{"b": "line one\nline two", "c": ["x\ny", {"d": "p\nq"}]}]}
    text = yamldoc.dump(doc)
    assert yaml.safe_load(text) == doc
    assert len(text.splitlines()) == 5


def test_plain_identifiers_stay_plain_and_the_layout_is_pyyaml_s():
    doc = {"metadata": {"id": "rp-1", "site": "lon1"}, "targets": [{"asset_id": "i-0001", "region": "eu-west-2"}], "n": []}
    assert yamldoc.dump(doc) == yaml.safe_dump(doc, sort_keys=False)


def test_non_json_values_are_refused():
    with pytest.raises(TypeError):
        yamldoc.dump({"a": object()})
    with pytest.raises(TypeError):
        yamldoc.dump({1: "a"})
