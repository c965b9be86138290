"""The drill as Dagster runs it (dr_drill_job, in process, on moto) and as a user runs it
(`qlrf dr drill` / `qlrf dr cleanup` in process), both over the same service."""

from __future__ import annotations

import json
from datetime import date

import boto3
import pytest

from qlrf.cli import main
from qlrf.dr.records import drill_history
from qlrf.warehouse import Warehouse
from tests.dr.support import DR, aws_inventory, drill_plan, seed_aws, tagged_in, write_inventory
from tests.servers.moto_server import start_moto_thread, use_loopback

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path, monkeypatch):
    with start_moto_thread(default_amis=False) as url:
        use_loopback(monkeypatch, url, str(tmp_path))
        monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "wh"))
        monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
        monkeypatch.delenv("QLRF_POSTGRES_URL", raising=False)
        monkeypatch.delenv("QLRF_OPA_URL", raising=False)
        session = boto3.Session()
        estate = seed_aws(session, url, 2)
        wh = Warehouse(str(tmp_path / "wh"))
        write_inventory(wh, "aws", aws_inventory(estate))
        plan_file = tmp_path / "plan.yaml"
        plan_file.write_text(drill_plan().to_yaml())
        yield session, url, wh, plan_file, estate


def test_dr_drill_job_runs_one_drill_and_reports_it_as_a_dr_drills_materialisation(env):
    from jobs.dr import dr_drill_job, drill_run_config
    from resources.remediation import GateResource, RemediationResource
    from resources.warehouse import WarehouseResource

    session, url, wh, plan_file, estate = env
    result = dr_drill_job.execute_in_process(
        run_config=drill_run_config(plan_yaml=plan_file.read_text()),
        resources={"warehouse": WarehouseResource(), "remediation": RemediationResource(), "gate": GateResource()})
    assert result.success
    mats = [e.event_specific_data.materialization for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert [m.asset_key.to_user_string() for m in mats] == ["dr_drills"]
    meta = mats[0].metadata
    assert meta["outcome"].value == "passed" and meta["vms"].value == 2 and meta["cleaned_up"].value is True
    rows = drill_history(wh, date.today(), days=1).to_pylist()
    assert sorted(r["asset_id"] for r in rows) == estate.instances and {r["outcome"] for r in rows} == {"passed"}
    assert tagged_in(session, url, DR) == {"instances": [], "images": [], "snapshots": []}


def test_cli_dry_run_then_drill_then_cleanup(env, capsys, monkeypatch):
    from tests.tenancy.support import local_operator

    session, url, wh, plan_file, estate = env
    local_operator(monkeypatch, "operator", "approver@*")  # drills need operator (production: approver)
    assert main(["dr", "drill", str(plan_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "nothing is created" in out and f"copy of {estate.snapshots[estate.instances[0]]}" in out
    assert drill_history(wh, date.today(), days=1).num_rows == 0

    assert main(["dr", "drill", str(plan_file)]) == 2  # not a terminal and no --yes: refused, nothing created
    assert "confirm with --yes" in capsys.readouterr().err

    assert main(["dr", "drill", str(plan_file), "--yes", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["outcome"] == "passed" and summary["vms"] == 2 and summary["cleaned_up"] is True
    assert {r["asset_id"] for r in summary["rows"]} == set(estate.instances)

    assert main(["dr", "cleanup", str(plan_file)]) == 0  # nothing left to remove
    assert "0 leftover resource(s) removed from us-west-2" in capsys.readouterr().err
