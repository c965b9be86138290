"""`qlrf run` launches its runs through the code location, as the Dagster UI does (issue 11, item 7).

An in-process run has no remote origin: the UI's Overview timeline leaves it out and re-executing it
warns. These tests read back what the instance recorded for every run of a real `qlrf run`.
"""

from __future__ import annotations

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from pipelines.launch import LAUNCH_DIR, launch_instance_config
from qlrf.settings import Settings
from tests.pipelines.conftest import DAY


def test_the_launch_instance_shares_the_storage_and_launches_without_the_daemon(tmp_path):
    settings = Settings.from_env({"QLRF_HOME": str(tmp_path)})
    config = launch_instance_config(settings, tmp_path / "dagster")
    assert config["storage"] == {"sqlite": {"base_dir": str(tmp_path / "dagster")}}
    assert config["run_coordinator"]["class"] == "DefaultRunCoordinator"
    with_pg = launch_instance_config(Settings.from_env({"QLRF_HOME": str(tmp_path), "QLRF_POSTGRES_URL": "postgresql://u:p@h/db"}),
                                     tmp_path / "dagster")
    assert with_pg["storage"] == {"postgres": {"postgres_url": {"env": "QLRF_DAGSTER_PG_URL"}}}  # never the URL itself
    yaml.safe_dump(config)  # plain data


def test_the_launchers_error_is_its_error_line_not_its_logging():
    from pipelines.launch import last_line

    output = ("\x1b[32m2026-11-30 14:56:08 +0000\x1b[0m - dagster.code_server - \x1b[34mINFO\x1b[0m - Started Dagster code server\n"
              "Usage: dagster job launch [OPTIONS]\nError: Job \"no_such_job\" not found in repository\n"
              "\x1b[32m2026-11-30 14:56:09 +0000\x1b[0m - dagster.code_server - \x1b[34mINFO\x1b[0m - Shutting down\n")
    assert last_line(output) == 'Error: Job "no_such_job" not found in repository'
    assert last_line("") == "no output"


@pytest.mark.slow
def test_qlrf_run_records_runs_with_the_code_location_origin(day_run):
    run = day_run("launch")
    proc, home = run.proc, run.home
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok    vsphere" in proc.stdout and "fleet report" in proc.stdout
    assert "\x1b[" not in proc.stderr  # not a terminal: no progress bar in the captured output
    assert (home / "dagster" / LAUNCH_DIR / "dagster.yaml").exists()

    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = sorted(instance.get_runs(), key=lambda r: r.job_name)
        assert [(r.job_name, r.tags["dagster/partition"]) for r in runs] == [
            ("fleet_report_job", DAY), ("golden_images_job", DAY), ("platform_daily_job", f"{DAY}|vsphere")]
        for run in runs:
            assert run.status == DagsterRunStatus.SUCCESS
            origin = run.remote_job_origin  # what the UI's timeline and re-execution need
            assert origin is not None and origin.location_name == "resilience_fabric"
            assert origin.job_name == run.job_name and run.tags["dagster/code_location"] == "resilience_fabric"
            assert run.tags["qlrf/trigger"] == "qlrf run"
            # Every check result names the partition it judged.
            evaluations = [e.dagster_event.event_specific_data
                           for e in instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)]
            assert evaluations
            assert {e.metadata["partition"].value for e in evaluations} == {run.tags["dagster/partition"]}


@pytest.mark.slow
def test_a_launch_that_creates_no_run_fails_in_one_line_and_keeps_its_log(tmp_path):
    from pipelines.instance import prepare_dagster_home
    from pipelines.launch import LaunchFailed, finish_launch, prepare_launch_home, start_launch

    settings = Settings.from_env({"QLRF_HOME": str(tmp_path)})
    home = prepare_dagster_home(settings)
    launch_home = prepare_launch_home(settings, home)
    # The instance is open (its SQLite schema made) before the launch, as `qlrf run` does: opened after,
    # it raced the launched process creating the same schema (alembic error in one CI run).
    with DagsterInstance.from_config(str(home)) as instance:
        launcher = start_launch(launch_home, "no_such_job", DAY, {}, "00000000-0000-4000-8000-000000000001", {})
        with pytest.raises(LaunchFailed) as failed:
            finish_launch(instance, launch_home, launcher, "00000000-0000-4000-8000-000000000001", "nothing")
    message = str(failed.value)
    assert message.startswith("nothing: dagster job launch created no run (") and "no_such_job" in message
    assert "\n" not in message and (launch_home / "logs" / "00000000-0000-4000-8000-000000000001.log").exists()
