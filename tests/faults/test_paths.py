"""Fault catalogue, SQL and paths: values that used to be pasted into SQL text, dates that name files.

A warehouse whose path holds a quote, a double quote, spaces and a semicolon broke every scoring
stage (the path was pasted into `read_parquet('...')`). Each attempt below must either work or be
refused in one line with exit code 2, never a traceback, never a file outside the warehouse.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from qlrf import cli
from qlrf.baselines.contracts import ImageFamily, registry_table
from qlrf.baselines.sbom import PACKAGES_SCHEMA, PackageQuery, vms_running
from qlrf.inventory.contract import inventory_table, snapshot_table
from qlrf.scoring import compliance, report, stages, trends
from qlrf.warehouse import Warehouse

pytestmark = pytest.mark.fault

DAY = date(2026, 11, 27)
AS_OF = datetime(2026, 11, 27, 23, 59, tzinfo=UTC)
TODAY = date(2026, 11, 30)
HOSTILE = "wh 'quote' \"double\"; DROP TABLE x; --"


def _vm(asset_id: str, image: str, site: str = "s1") -> dict:
    return {"asset_id": asset_id, "platform": "aws", "account": "1", "region": "eu-west-1", "zone": "eu-west-1a",
            "name": asset_id, "state": "running", "image_ref": image, "instance_type": "t3", "launched_at": AS_OF,
            "tags": {}, "group": None, "site": site, "environment": "prod", "owner": "team", "public_ip": False,
            "discovered_at": AS_OF}


@pytest.fixture()
def hostile_wh(tmp_path) -> Warehouse:
    """A warehouse under a path with ', ", spaces and ; holding one small day of inventory and baselines."""
    wh = Warehouse(str(tmp_path / HOSTILE))
    family = ImageFamily.model_validate({"family": "ubuntu", "os": "Ubuntu", "versions": [
        {"version": v, "released_at": AS_OF - timedelta(days=d), "channel": "prod",
         "images": {"aws": {"eu-west-1": f"ami-00000{v.replace('.', '')}"}}} for v, d in (("1.0.0", 40), ("1.1.0", 5))]})
    wh.write("golden_images", registry_table([family], AS_OF), DAY)
    wh.write("inventory", inventory_table([_vm("i-1", "ami-00000110"), _vm("i-2", "ami-00000100", site="o'brien")]), DAY, "aws")
    snaps = [{"asset_id": "i-1", "platform": "aws", "snapshot_id": "s-1", "source_id": None, "region": None,
              "created_at": AS_OF - timedelta(hours=2)}]
    wh.write("vm_snapshots", snapshot_table(snaps), DAY, "aws")
    return wh


def _scored(wh: Warehouse) -> Warehouse:
    stages.run_drift(wh, DAY, "aws", AS_OF)
    catalogue = compliance.load_catalogue()
    stages.run_compliance(wh, DAY, "aws", AS_OF, catalogue, [])
    stages.run_dr(wh, DAY, "aws", AS_OF)
    return wh


def test_drift_stage_over_a_warehouse_path_with_quotes_and_semicolons(hostile_wh):
    outcome = stages.run_drift(hostile_wh, DAY, "aws", AS_OF)
    assert (outcome.rows, outcome.distinct_keys, outcome.inventory_rows) == (2, 2, 2)
    assert outcome.breakdown == {"behind": 1, "current": 1}
    assert hostile_wh.run_metadata("vm_drift", DAY, "aws")["baseline_date"] == DAY.isoformat()


def test_compliance_and_dr_stages_over_a_hostile_path(hostile_wh):
    _scored(hostile_wh)
    assert hostile_wh.read("vm_compliance", DAY, "aws").num_rows == 2
    ready = dict(zip(*hostile_wh.read("vm_dr", DAY, "aws").select(["asset_id", "ready"]).to_pydict().values(), strict=True))
    assert ready == {"i-1": True, "i-2": False}


def test_fleet_report_tables_over_a_hostile_path(hostile_wh):
    summary, sites = report.fleet_tables(_scored(hostile_wh), DAY, ("aws",))
    assert summary.to_pylist()[-1]["vms"] == 2
    assert {r["site"] for r in sites.to_pylist()} == {"s1", "o'brien"}


def test_drift_trends_over_a_hostile_path(hostile_wh):
    stages.run_drift(hostile_wh, DAY, "aws", AS_OF)
    assert trends.drift_trends(hostile_wh, DAY).num_rows == 2


def test_sbom_query_over_a_hostile_path(hostile_wh):
    import pyarrow as pa

    stages.run_drift(hostile_wh, DAY, "aws", AS_OF)
    rows = [{"family": "ubuntu", "version": "1.0.0", "package": "openssl", "package_version": "3.0.2", "purl": None, "license": None}]
    hostile_wh.write("image_packages", pa.Table.from_pylist(rows, schema=PACKAGES_SCHEMA), DAY)
    assert [r["asset_id"] for r in vms_running(hostile_wh, DAY, PackageQuery.parse("openssl@<3.0.3")).to_pylist()] == ["i-2"]


def test_waiver_value_with_a_quote_and_sql_matches_only_as_text(hostile_wh):
    stages.run_drift(hostile_wh, DAY, "aws", AS_OF)
    catalogue = compliance.load_catalogue()
    control = catalogue.controls[0].id
    waivers = [compliance.Waiver.model_validate(
        {"id": f"w{i}", "control": control, "owner": "o", "reason": "r", "expires": "2027-01-01", "match": {"site": site}})
        for i, site in enumerate(["o'brien", "x' OR '1'='1"])]
    stages.run_compliance(hostile_wh, DAY, "aws", AS_OF, catalogue, waivers)
    rows = {r["asset_id"]: r for r in hostile_wh.read("vm_compliance", DAY, "aws").to_pylist()}
    assert control not in rows["i-2"]["failed_controls"]
    assert control not in rows["i-1"]["waived_controls"]


@pytest.mark.parametrize("command", [["report"], ["sbom", "query", "openssl"], ["run"]])
@pytest.mark.parametrize(
    ("value", "says"),
    [("../../etc", "not a date"), ("2026-11-27/../../x", "not a date"), ("2026-02-30", "not a date"),
     ("20261127", "not a date"), ("2026-09-01", "before 2026-09-02"), ("2026-12-01", "after 2026-11-30"), ("", "not a date")],
)
def test_date_argument_outside_the_partitions(command, value, says, capsys, isolated_env):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--date", value], today=TODAY)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert says in err and "Traceback" not in err


def test_report_date_today_is_accepted_and_says_what_to_run(capsys, isolated_env):
    assert cli.main(["report", "--date", "2026-11-30"], today=TODAY) == 2
    assert "qlrf run --date 2026-11-30" in capsys.readouterr().err


def test_pipelines_run_refuses_a_traversal_date(capsys):
    from pipelines import run

    with pytest.raises(SystemExit) as exit_info:
        run.main(["--date", "../../etc"], today=TODAY)
    assert exit_info.value.code == 2 and "not a date" in capsys.readouterr().err


@pytest.mark.parametrize("spec", ["openssl@~3.0", "openssl@^3.0", "openssl@3.0.*", "openssl@~=3.0", "openssl@===3.0", "openssl@>3.0 || <2"])
def test_sbom_query_with_an_unsupported_operator(spec, capsys, isolated_env):
    assert cli.main(["sbom", "query", spec], today=TODAY) == 2
    err = capsys.readouterr().err
    assert "supported" in err and "<=" in err and "Traceback" not in err


def test_sbom_query_for_a_day_without_drift_results(hostile_wh, monkeypatch, capsys, isolated_env):
    import pyarrow as pa

    rows = [{"family": "ubuntu", "version": "1.0.0", "package": "openssl", "package_version": "3.0.2", "purl": None, "license": None}]
    hostile_wh.write("image_packages", pa.Table.from_pylist(rows, schema=PACKAGES_SCHEMA), DAY)
    monkeypatch.setenv("QLRF_WAREHOUSE", hostile_wh.root)
    assert cli.main(["sbom", "query", "openssl", "--date", DAY.isoformat()], today=TODAY) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vm_drift" in err[0] and "qlrf run" in err[0]


@pytest.mark.parametrize("command", [["audit", "verify"], ["approvals", "list"]])
def test_a_dead_task_database_is_one_line_without_its_password(command, monkeypatch, capsys, isolated_env):
    """The CLI against an unreachable PostgreSQL used to print a raw SQLAlchemy traceback."""
    monkeypatch.setenv("QLRF_POSTGRES_URL", "postgresql://rf:hunter2-secret-pw@127.0.0.1:1/rf")
    assert cli.main(command, today=TODAY) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the task/audit database: ") and err.count("\n") == 1
    assert "hunter2-secret-pw" not in err and "Traceback" not in err
