"""One configuration pattern: envparse reads, overlay puts resource fields over their variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from qlrf.envparse import as_variable, choice, environ, overlay, text
from qlrf.settings import Settings


def test_overlay_writes_only_the_fields_that_are_set_and_leaves_the_input_alone():
    env = {"QLRF_A": "from-env", "QLRF_B": "kept"}
    merged = overlay({"QLRF_A": "field", "QLRF_B": None, "QLRF_LIST": ["x", "y"], "QLRF_FLAG": False, "QLRF_N": 3}, env)
    assert merged == {"QLRF_A": "field", "QLRF_B": "kept", "QLRF_LIST": "x,y", "QLRF_FLAG": "false", "QLRF_N": "3"}
    assert env == {"QLRF_A": "from-env", "QLRF_B": "kept"}


def test_overlay_reads_the_process_environment_when_called(monkeypatch):
    monkeypatch.setenv("QLRF_PROBE", "now")
    assert overlay({})["QLRF_PROBE"] == "now"
    assert environ({"only": "this"}) == {"only": "this"}
    assert as_variable(True) == "true" and as_variable(("a", "b")) == "a,b"


def test_text_and_choice_treat_blank_as_unset_and_name_the_variable():
    assert text({"X": "  "}, "X", "dflt") == "dflt" and text({"X": " v "}, "X") == "v"
    assert choice({"QLRF_EXECUTOR": "Multiprocess"}, "QLRF_EXECUTOR", ("in_process", "multiprocess"), "in_process") == "multiprocess"
    with pytest.raises(ValueError, match="QLRF_EXECUTOR='threads': expected one of in_process, multiprocess"):
        choice({"QLRF_EXECUTOR": "threads"}, "QLRF_EXECUTOR", ("in_process", "multiprocess"), "in_process")


def test_settings_defaults_are_the_embedded_default(tmp_path):
    settings = Settings.from_env({"QLRF_HOME": str(tmp_path)})
    assert (settings.executor, settings.run_launcher, settings.run_launcher_config) == ("in_process", "default", None)
    assert settings.dagster_home == tmp_path / "dagster" and settings.warehouse == str(tmp_path / "warehouse")
    assert settings.sources == {"aws": "sample", "azure": "sample", "gcp": "sample", "vsphere": "sample"}
    assert (settings.sample_seed, settings.postgres_url, settings.golden_dir) == (7, None, None)


def test_settings_overrides(tmp_path):
    settings = Settings.from_env({
        "QLRF_HOME": str(tmp_path), "DAGSTER_HOME": "/srv/dagster", "QLRF_EXECUTOR": "multiprocess",
        "QLRF_RUN_LAUNCHER": "docker", "QLRF_RUN_LAUNCHER_CONFIG": "/etc/qlrf/launcher.yaml",
        "QLRF_SOURCE_GCP": "files:/exports", "QLRF_SAMPLE_SEED": "11", "QLRF_GOLDEN_DIR": "/golden",
    })
    assert (settings.executor, settings.run_launcher) == ("multiprocess", "docker")
    assert settings.run_launcher_config == Path("/etc/qlrf/launcher.yaml") and settings.dagster_home == Path("/srv/dagster")
    assert settings.sources["gcp"] == "files:/exports" and settings.sample_seed == 11 and settings.golden_dir == Path("/golden")


@pytest.mark.parametrize(("name", "value", "message"), [
    ("QLRF_SOURCE_AWS", "s3", "QLRF_SOURCE_AWS='s3': expected sample, live or files:<dir>"),
    ("QLRF_RUN_LAUNCHER", "ecs", "QLRF_RUN_LAUNCHER='ecs': expected one of default, k8s, docker"),
    ("QLRF_SAMPLE_SEED", "seven", "QLRF_SAMPLE_SEED='seven': expected an integer"),
])
def test_a_bad_setting_names_the_variable(name, value, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env({name: value})
