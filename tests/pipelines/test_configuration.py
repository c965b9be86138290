"""Configuration of the code location and the instance: executor, run launcher, secrets by EnvVar."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from dagster import EnvVar, asset, in_process_executor, materialize, multiprocess_executor

from pipelines.instance import instance_config, prepare_dagster_home
from qlrf.settings import Settings
from resources.discovery import DiscoveryResource  # module level: Dagster resolves the annotations


@asset
def azure_secret(discovery: DiscoveryResource) -> str:
    return discovery.connector("azure").connector_config().client_secret


@asset
def aws_probe(discovery: DiscoveryResource) -> str:
    return type(discovery.connector("aws")).__name__


def test_the_executor_defaults_to_in_process_and_follows_qlrf_executor():
    from pipelines.definitions import build_definitions
    from pipelines.executors import executor_for

    assert build_definitions({}).executor is in_process_executor
    assert build_definitions({"QLRF_EXECUTOR": "multiprocess"}).executor is multiprocess_executor
    # celery and k8s are in the lock file (issue 16); docker is documented but needs its package.
    assert executor_for("celery").name == "celery"
    assert executor_for("k8s").name == "k8s"
    with pytest.raises(ValueError, match="QLRF_EXECUTOR=docker: install dagster-docker"):
        executor_for("docker")
    with pytest.raises(ValueError, match="QLRF_EXECUTOR='threads'"):
        build_definitions({"QLRF_EXECUTOR": "threads"})


def test_secrets_are_bound_by_name_only_when_their_variable_exists():
    from pipelines.definitions import resources

    unset = resources({})
    assert unset["discovery"].azure.client_secret is None and unset["llm"].api_key is None
    bound = resources({"AZURE_CLIENT_SECRET": "s3cr3t", "OPENAI_API_KEY": "sk-x", "QLRF_VSPHERE_PASSWORD": "pw",
                       "QLRF_SMTP_PASSWORD": "mail", "QLRF_POSTGRES_URL": "postgresql://u:p@db/qlrf"})
    assert bound["discovery"].azure.client_secret == EnvVar("AZURE_CLIENT_SECRET")
    assert bound["discovery"].vsphere.password == EnvVar("QLRF_VSPHERE_PASSWORD")
    assert bound["llm"].api_key == EnvVar("OPENAI_API_KEY")
    assert bound["alerts"].smtp_password == EnvVar("QLRF_SMTP_PASSWORD")
    assert bound["remediation"].database_url == EnvVar("QLRF_POSTGRES_URL")
    # The value is never in the definitions: only the variable's name is.
    assert "s3cr3t" not in repr(bound) and "u:p@db" not in repr(bound)


def test_a_bound_secret_is_resolved_when_the_run_starts(monkeypatch):
    from pipelines.definitions import resources

    monkeypatch.setenv("AZURE_CLIENT_SECRET", "at-load")
    res = resources()
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "at-launch")
    result = materialize([azure_secret], resources={"discovery": res["discovery"]})
    assert result.output_for_node("azure_secret") == "at-launch"


def test_an_unconfigured_platform_does_not_fail_the_run(monkeypatch):
    """No Azure/GCP/vSphere variable at all: the discovery resource still initialises for an AWS run."""
    from pipelines.definitions import resources

    for name in ("AZURE_CLIENT_SECRET", "GOOGLE_APPLICATION_CREDENTIALS", "QLRF_VSPHERE_PASSWORD"):
        monkeypatch.delenv(name, raising=False)

    result = materialize([aws_probe], resources={"discovery": resources()["discovery"]})
    assert result.success and result.output_for_node("aws_probe") == "AwsResource"


def test_instance_defaults_to_dagsters_run_launcher(tmp_path):
    config = instance_config(Settings.from_env({"QLRF_HOME": str(tmp_path)}))
    assert "run_launcher" not in config and "storage" not in config


def test_instance_run_launcher_from_settings(tmp_path):
    launcher_yaml = tmp_path / "launcher.yaml"
    launcher_yaml.write_text("job_image: registry.example/qlrf:1\ninstance_config_map: dagster-instance\n")
    settings = Settings.from_env({"QLRF_HOME": str(tmp_path), "QLRF_RUN_LAUNCHER": "k8s", "QLRF_RUN_LAUNCHER_CONFIG": str(launcher_yaml)})
    assert instance_config(settings)["run_launcher"] == {
        "module": "dagster_k8s", "class": "K8sRunLauncher",
        "config": {"job_image": "registry.example/qlrf:1", "instance_config_map": "dagster-instance"},
    }
    docker = instance_config(Settings.from_env({"QLRF_HOME": str(tmp_path), "QLRF_RUN_LAUNCHER": "docker"}))
    assert docker["run_launcher"] == {"module": "dagster_docker", "class": "DockerRunLauncher"}


def test_prepare_dagster_home_writes_the_launcher(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "unused"))  # restored after the test
    settings = Settings.from_env({"QLRF_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path / "dh"), "QLRF_RUN_LAUNCHER": "docker"})
    home = prepare_dagster_home(settings)
    written = yaml.safe_load((home / "dagster.yaml").read_text())
    assert home == tmp_path / "dh" and written["run_launcher"]["class"] == "DockerRunLauncher"


def test_discovery_reads_sample_unless_the_platform_is_live(tmp_path):
    from resources.estate import EstateResource

    estate = EstateResource(estate_dir=str(tmp_path / "estate"), seed=7)
    found = DiscoveryResource().discover("vsphere", day=datetime(2026, 11, 27).date(),
                                         discovered_at=datetime(2026, 11, 27, 6, tzinfo=UTC), estate=estate)
    assert found.vms and {v["platform"] for v in found.vms} == {"vsphere"}
