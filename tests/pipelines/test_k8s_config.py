"""The Kubernetes path checked without a cluster: deploy/k8s/run-launcher.yaml and the chart's
runLauncher values against K8sRunLauncher's own schema, deploy/k8s/executor.yaml against
k8s_job_executor's, through Dagster's run-config validation; a typo fails. The Dockerfile builds from
the lock file, and the chart, the launcher file and workspace.yaml name the same image and module."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from pipelines.executors import executor_for
from pipelines.k8s import (
    EXECUTOR_FILE,
    HELM_VALUES_FILE,
    RUN_LAUNCHER_FILE,
    load_yaml,
    validate_launcher_config,
)

ROOT = Path(__file__).resolve().parents[2]


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def chart_launcher_config(values: dict) -> dict:
    """runLauncher.config.k8sRunLauncher as the official chart renders it into dagster.yaml: camelCase
    keys to snake_case, `- name: x` lists to names, and the settings the chart itself supplies (instance
    ConfigMap, Postgres secret, DAGSTER_HOME as environment references). An unknown key stays a key, so a
    typo in the values reaches the schema and fails there."""
    raw = values["runLauncher"]["config"]["k8sRunLauncher"]
    out: dict = {
        "instance_config_map": {"env": "DAGSTER_K8S_INSTANCE_CONFIG_MAP"},
        "postgres_password_secret": {"env": "DAGSTER_K8S_PG_PASSWORD_SECRET"},
        "dagster_home": {"env": "DAGSTER_HOME"},
    }
    for key, value in raw.items():
        if key in ("envConfigMaps", "envSecrets"):
            value = [item["name"] for item in value]
        elif key == "runK8sConfig":
            value = {_snake(k): v for k, v in value.items()}
        out[_snake(key)] = value
    return out


def test_run_launcher_file_passes_k8s_run_launchers_schema():
    config = validate_launcher_config(load_yaml(RUN_LAUNCHER_FILE))
    assert config["instance_config_map"] and config["job_image"]


@pytest.fixture
def chart_env(monkeypatch):
    """What the chart sets in the webserver and daemon pods for the env references it renders."""
    for name, value in (("DAGSTER_K8S_INSTANCE_CONFIG_MAP", "dagster-instance"),
                        ("DAGSTER_K8S_PG_PASSWORD_SECRET", "dagster-postgresql-secret"),
                        ("DAGSTER_HOME", "/opt/dagster/dagster_home")):
        monkeypatch.setenv(name, value)


def test_helm_values_render_to_a_valid_k8s_run_launcher(chart_env):
    values = load_yaml(HELM_VALUES_FILE)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    rendered = validate_launcher_config(chart_launcher_config(values))
    assert rendered["env_secrets"] == ["resilience-fabric-secrets"]


@pytest.mark.parametrize(
    ("mutate", "names"),
    [
        (lambda c: c.update(job_imag=c.pop("job_image")), "job_imag"),
        (lambda c: c.update(fail_pod_on_run_failure="yes"), "fail_pod_on_run_failure"),
        (lambda c: c.update(env_secrets="one-secret"), "env_secrets"),
    ],
    ids=["misspelt key", "wrong type", "string for a list"],
)
def test_a_broken_launcher_setting_fails_naming_it(mutate, names):
    config = load_yaml(RUN_LAUNCHER_FILE)
    mutate(config)
    with pytest.raises(ValueError, match=f"K8sRunLauncher settings: .*{names}"):
        validate_launcher_config(config)


def test_a_typo_in_the_helm_values_fails(chart_env):
    values = load_yaml(HELM_VALUES_FILE)
    values["runLauncher"]["config"]["k8sRunLauncher"]["failPodOnRunFaliure"] = True
    with pytest.raises(ValueError, match="fail_pod_on_run_faliure"):
        validate_launcher_config(chart_launcher_config(values))


def test_executor_file_passes_k8s_job_executors_schema_and_a_typo_fails():
    config = load_yaml(EXECUTOR_FILE)
    assert executor_for("k8s", config).name == "k8s_configured"
    with pytest.raises(ValueError, match='k8s executor settings: .*"max_concurent"'):
        executor_for("k8s", {**config, "max_concurent": 3})
    with pytest.raises(ValueError, match="max_concurrent"):
        executor_for("k8s", {**config, "max_concurrent": "twenty"})


def test_definitions_load_with_the_k8s_executor_file(tmp_path):
    from pipelines.definitions import build_definitions

    defs = build_definitions({"QLRF_EXECUTOR": "k8s", "QLRF_EXECUTOR_CONFIG": str(EXECUTOR_FILE)})
    assert defs.resolve_job_def("platform_daily_job").executor_def.name == "k8s_configured"
    bad = tmp_path / "missing.yaml"
    with pytest.raises(ValueError, match="QLRF_EXECUTOR_CONFIG=.*missing.yaml: cannot read"):
        build_definitions({"QLRF_EXECUTOR": "k8s", "QLRF_EXECUTOR_CONFIG": str(bad)})


def test_chart_launcher_file_workspace_and_dockerfile_agree():
    values = load_yaml(HELM_VALUES_FILE)
    (location,) = values["dagster-user-deployments"]["deployments"]
    image = f"{location['image']['repository']}:{location['image']['tag']}"
    assert load_yaml(RUN_LAUNCHER_FILE)["job_image"] == image
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"][0]["python_module"]
    args = location["dagsterApiGrpcArgs"]
    assert args[args.index("--module-name") + 1] == workspace["module_name"]
    assert args[args.index("--attribute") + 1] == workspace["attribute"]
    assert location["name"] == workspace["location_name"].replace("_", "-")  # a Kubernetes name: no underscores

    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv pip sync --system --compile-bytecode requirements.lock" in dockerfile  # the lock file, nothing resolved
    uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert f'"uv=={uv}"' in dockerfile  # the same uv release as `make setup`
    assert all(f"--{flag}" in dockerfile for flag in ("module-name", "attribute"))
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")}
    needed = {"requirements.lock", "pyproject.toml", "qlrf", "pipelines", "assets", "policy", "workspace.yaml"}
    assert not needed & ignored and ".venv" in ignored and ".git" in ignored
    lock = (ROOT / "requirements.lock").read_text()
    assert re.search(r"^dagster-k8s==0\.29\.27$", lock, re.M) and values["dagsterWebserver"]["image"]["tag"] == re.search(
        r"^dagster==(\S+)$", lock, re.M).group(1)


def test_run_pods_share_the_volume_the_manifest_claims():
    """Step outputs cross pods through $DAGSTER_HOME/storage: the launcher file and the chart values
    mount the one ReadWriteMany claim deploy/k8s/storage-pvc.yaml creates."""
    pvc = load_yaml(RUN_LAUNCHER_FILE.parent / "storage-pvc.yaml")
    assert pvc["kind"] == "PersistentVolumeClaim" and "ReadWriteMany" in pvc["spec"]["accessModes"]
    chart = load_yaml(HELM_VALUES_FILE)["runLauncher"]["config"]["k8sRunLauncher"]
    for volumes, mounts in ((load_yaml(RUN_LAUNCHER_FILE)["volumes"], load_yaml(RUN_LAUNCHER_FILE)["volume_mounts"]),
                            (chart["volumes"], chart["volumeMounts"])):
        assert [v["persistentVolumeClaim"]["claimName"] for v in volumes] == [pvc["metadata"]["name"]]
        assert {m["mountPath"] for m in mounts} == {"/opt/dagster/dagster_home/storage", "/opt/dagster/qlrf"}


def test_qlrf_run_refuses_a_misspelt_k8s_launcher_file_before_writing_dagster_yaml(tmp_path):
    from pipelines.instance import run_launcher_config
    from qlrf.settings import Settings

    good = Settings.from_env({"QLRF_RUN_LAUNCHER": "k8s", "QLRF_RUN_LAUNCHER_CONFIG": str(RUN_LAUNCHER_FILE)})
    section = run_launcher_config(good)
    assert section["class"] == "K8sRunLauncher" and section["config"] == load_yaml(RUN_LAUNCHER_FILE)
    bad = tmp_path / "launcher.yaml"
    bad.write_text(RUN_LAUNCHER_FILE.read_text().replace("service_account_name:", "service_acount_name:"))
    with pytest.raises(ValueError, match="service_acount_name"):
        run_launcher_config(Settings.from_env({"QLRF_RUN_LAUNCHER": "k8s", "QLRF_RUN_LAUNCHER_CONFIG": str(bad)}))
