"""Configuration helpers shared by every sub-domain."""

from __future__ import annotations

from pathlib import Path

from qlrf.settings import shown


def test_paths_below_the_working_directory_are_shown_relative(tmp_path: Path):
    assert shown(tmp_path / "var" / "warehouse", cwd=tmp_path) == "var/warehouse"


def test_paths_elsewhere_and_uris_are_shown_as_they_are(tmp_path: Path):
    other = tmp_path.parent / "elsewhere"
    assert shown(other, cwd=tmp_path) == str(other)
    assert shown("s3://bucket/warehouse", cwd=tmp_path) == "s3://bucket/warehouse"
