"""Failover simulation over a small scored warehouse (the real stages write vm_dr; drills planted
through the dr_drills seam): who is affected, where they recover, capacity, RTO from measured drills,
RPO exposure and the verdict per group; then `qlrf dr simulate|history` over the same warehouse."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from qlrf.baselines.contracts import registry_table
from qlrf.cli import main
from qlrf.dr.records import record_drill
from qlrf.dr.simulation import SimulationError, end_of_day, simulate
from qlrf.dr.targets import TargetsError, load_targets
from qlrf.inventory.contract import inventory_table, snapshot_table
from qlrf.inventory.instance_types import default_instance_types
from qlrf.scoring import stages
from qlrf.warehouse import Warehouse
from tests.scoring.test_scoring import AS_OF, _family, _snap, _vm, ami

DAY = AS_OF.date()
END = end_of_day(DAY)
TARGETS = """
version: 1
objectives: {rto_minutes: {prod: 60, dev: 1440}}
targets:
  t2: {site: s2, vcpu: 10, memory_gib: 40}
  t1: {site: s1, vcpu: 100, memory_gib: 400}
sites: {s1: t2, s2: t1}
regions: {r9: t1}
scenarios: [{name: lose-s1, site: s1}, {name: lose-r9, region: r9}]
"""


def _drill(drill, asset, days_ago, rto, outcome="passed", instance_type="m6i.large"):
    start = END - timedelta(days=days_ago)
    return {"drill_id": drill, "plan_id": "p", "plan_hash": "sha256:0", "asset_id": asset, "platform": "aws", "site": "s1",
            "environment": "prod", "instance_type": instance_type, "started_at": start, "ended_at": start + timedelta(hours=1),
            "rto_seconds": rto, "rto_objective_seconds": 3600.0, "outcome": outcome, "cleaned_up": True}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    wh = Warehouse(str(tmp_path_factory.mktemp("wh")))
    wh.write("golden_images", registry_table([_family()], AS_OF), DAY)
    good = ami("1.10.0")
    vms = [
        _vm("a1", good, instance_type="m6i.large", group="pay"),
        _vm("a2", good, instance_type="m6i.large", group="pay"),
        _vm("b1", good, instance_type="m6i.xlarge", group="web"),
        _vm("b2", good, instance_type="x9.mystery", group="web"),
        _vm("c1", good, env="dev", instance_type="m6i.large", tags={"app": "etl"}, state="stopped"),
        _vm("d1", good, instance_type="m6i.large", state="terminated"),
        _vm("e1", good, instance_type="m6i.large", site="s2", region="r9", group="far"),
    ]
    snaps = [_snap("a1", 3), _snap("a2", 3), _snap("b1", 30), _snap("b2", 3), _snap("e1", 3)]
    wh.write("inventory", inventory_table(vms), DAY, "aws")
    wh.write("vm_snapshots", snapshot_table(snaps), DAY, "aws")
    record_drill(wh, [_drill("d-1", "a1", 10, 300.0), _drill("d-2", "a2", 20, 600.0), _drill("d-3", "e1", 40, 900.0),
                      _drill("d-old", "a1", 200, 10.0), _drill("d-bad", "a2", 5, 5.0, outcome="failed")])
    stages.run_drift(wh, DAY, "aws", END)
    stages.run_dr(wh, DAY, "aws", END)
    return wh


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    path = tmp_path_factory.mktemp("targets") / "dr_targets.yaml"
    path.write_text(TARGETS)
    return load_targets(path)


def _run(wh, targets, kind, value, environment=None):
    return simulate(wh, targets.scenario(kind, value, environment), targets, default_instance_types(), DAY).as_dict()


def test_losing_a_site_affects_its_live_vms_and_recovers_them_at_the_mapped_target(warehouse, targets):
    r = _run(warehouse, targets, "site", "s1")
    assert r["affected_vms"] == 5 and r["affected_running_vms"] == 4  # d1 terminated, e1 elsewhere, c1 stopped
    [cap] = r["capacity"]
    assert (cap["target"], cap["site"], cap["vcpu_needed"], cap["vcpu_available"]) == ("t2", "s2", 2 + 2 + 4, 10)
    assert (cap["memory_gib_needed"], cap["memory_gib_available"], cap["fits"]) == (8 + 8 + 16, 40.0, True)
    assert (cap["unknown_size_vms"], cap["unknown_types"]) == (1, ["aws:x9.mystery"])  # named, never counted as zero


def test_rto_is_the_median_of_passed_drills_in_180_days_of_the_same_platform_and_size_class(warehouse, targets):
    rto = {(x["platform"], x["size_class"]): x for x in _run(warehouse, targets, "site", "s1")["rto"]}
    small = rto[("aws", "small")]
    # 300, 600, 900 from passed drills in the window; the 200-day-old and the failed drill do not count.
    assert (small["estimate_seconds"], small["drills"], small["measured_vms"], small["vms"]) == (600.0, 3, 3, 3)
    assert small["method"].startswith("median RTO of 3 VM(s) in 3 passed drill(s) of aws small VMs")
    for cls in ("medium", "unknown"):
        assert rto[("aws", cls)]["estimate_seconds"] is None and rto[("aws", cls)]["method"].startswith("unmeasured")


def test_rpo_exposure_and_the_verdict_per_group(warehouse, targets):
    r = _run(warehouse, targets, "site", "s1")
    assert (r["rpo"]["vms_without_restore_point"], r["rpo"]["vms_over_objective"]) == (1, 1)
    prod = next(e for e in r["rpo"]["by_environment"] if e["environment"] == "prod")
    assert (prod["rpo_objective_hours"], prod["max_exposure_hours"]) == (24, 42.0)  # 30 h before noon + 12 h to day end
    groups = {g["group"]: g for g in r["verdict"]}
    assert set(groups) == {"pay", "web", "app:etl/dev"} and r["affected_groups"] == 3
    assert groups["pay"]["verdict"] == "met" and groups["pay"]["reasons"] == []
    assert groups["pay"]["rto_estimate_seconds_max"] == 600.0 and groups["pay"]["rto_objective_seconds"] == 3600.0
    web = {x["reason"]: x["vms"] for x in groups["web"]["reasons"]}
    assert groups["web"]["verdict"] == "breached" and web == {"rto_unmeasured": 2, "rpo_exceeded": 1}
    assert {x["reason"] for x in groups["app:etl/dev"]["reasons"]} == {"no_restore_point"}
    assert (r["groups_met"], r["groups_breached"]) == (1, 2)


def test_a_region_looks_up_the_region_map_first_and_a_target_inside_the_loss_is_lost_too(warehouse, targets, tmp_path):
    r = _run(warehouse, targets, "region", "r9")
    assert r["affected_vms"] == 1 and [c["target"] for c in r["capacity"]] == ["t1"] and r["capacity"][0]["fits"]
    inside = tmp_path / "inside.yaml"
    inside.write_text(TARGETS.replace("sites: {s1: t2, s2: t1}", "sites: {s1: t1, s2: t2}"))
    lost = load_targets(inside)
    r = _run(warehouse, lost, "site", "s1")
    assert r["capacity"][0]["vcpu_available"] == 0 and "lies in the lost site s1" in r["capacity"][0]["note"]
    assert all("target_lost" in {x["reason"] for x in g["reasons"]} for g in r["verdict"])
    short = tmp_path / "short.yaml"
    short.write_text(TARGETS.replace("t2: {site: s2, vcpu: 10", "t2: {site: s2, vcpu: 4"))
    r = _run(warehouse, load_targets(short), "site", "s1")
    assert not r["capacity"][0]["fits"] and {g["verdict"] for g in r["verdict"]} == {"breached"}


def test_environment_narrows_and_an_unknown_site_affects_nothing(warehouse, targets):
    assert _run(warehouse, targets, "site", "s1", "dev")["affected_vms"] == 1
    nothing = _run(warehouse, targets, "site", "atlantis")
    assert (nothing["affected_vms"], nothing["affected_groups"], nothing["capacity"]) == (0, 0, [])


def test_missing_or_outdated_vm_dr_is_refused_naming_the_partition(warehouse, targets, tmp_path):
    empty = Warehouse(str(tmp_path / "empty"))
    with pytest.raises(SimulationError, match="no vm_dr partition in the warehouse: run `qlrf run`"):
        simulate(empty, targets.scenario("site", "s1"), targets, default_instance_types())
    with pytest.raises(SimulationError, match="no vm_dr partition for 2026-11-26: run `qlrf run --date 2026-11-26`"):
        simulate(warehouse, targets.scenario("site", "s1"), targets, default_instance_types(), "2026-11-26")
    old = Warehouse(str(tmp_path / "old"))
    old.write("vm_dr", pq.read_table(warehouse.file("vm_dr", DAY, "aws")).drop_columns(["dr_group"]), DAY, "aws")
    with pytest.raises(SimulationError, match="predates failover simulation \\(no dr_group\\)"):
        simulate(old, targets.scenario("site", "s1"), targets, default_instance_types())


@pytest.mark.parametrize(("text", "message"), [
    (TARGETS.replace("sites: {s1: t2", "sites: {s1: nowhere"), "sites.s1: unknown target 'nowhere'"),
    (TARGETS.replace("vcpu: 10,", "vcpu: 0,"), "targets.t2.vcpu: Input should be greater than 0"),
    (TARGETS.replace("{name: lose-s1, site: s1}", "{name: lose-s1, site: s1, region: r9}"), "must name exactly one of"),
    (TARGETS.replace("lose-r9", "lose-s1"), "duplicate name(s) ['lose-s1']"),
    (TARGETS.replace("version: 1", "version: 1\ncolour: red"), "colour: Extra inputs are not permitted"),
    ("version: [", "dr_targets.yaml: while parsing"),
])
def test_a_bad_target_map_is_refused_naming_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "dr_targets.yaml"
    path.write_text(text)
    with pytest.raises(TargetsError) as err:
        load_targets(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_the_shipped_target_map_covers_every_sample_site():
    from qlrf.inventory.sample import SITES

    shipped = load_targets()
    assert set(shipped.sites) == set(SITES) and {s.name for s in shipped.scenarios} >= {"lose-syd1"}
    assert all(shipped.targets[t].site != site for site, t in shipped.sites.items())  # never recover into the loss


def test_cli_simulate_json_and_text(warehouse, targets, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QLRF_WAREHOUSE", warehouse.root)
    path = tmp_path / "t.yaml"
    path.write_text(TARGETS)
    assert main(["dr", "simulate", "--site", "s1", "--targets", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"affected_vms", "affected_groups", "capacity", "rto", "rpo", "verdict"} <= set(out)
    assert out["affected_vms"] == 5 and out["day"] == DAY.isoformat()
    monkeypatch.setenv("QLRF_DR_TARGETS", str(path))
    assert main(["dr", "simulate", "--site", "s1", "--date", DAY.isoformat()]) == 0
    text = capsys.readouterr().out
    assert "5 VMs affected (4 running) in 3 groups: 1 meet their objectives, 2 breached" in text
    assert "t2" in text and "10 min" in text and "RTO unmeasured" in text


def test_cli_refusals_are_one_line_exit_2(warehouse, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "none"))
    assert main(["dr", "simulate", "--site", "syd1"]) == 2
    assert "no vm_dr partition in the warehouse" in capsys.readouterr().err
    monkeypatch.setenv("QLRF_DR_TARGETS", str(tmp_path / "missing.yaml"))
    assert main(["dr", "simulate", "--site", "syd1"]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["dr", "simulate", "--site", "s1", "--region", "r9"])


def test_cli_history_lists_drills_with_credit_left(warehouse, monkeypatch, capsys):
    monkeypatch.setenv("QLRF_WAREHOUSE", warehouse.root)
    assert main(["dr", "history", "--date", DAY.isoformat(), "--json"]) == 0
    rows = {r["drill_id"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"d-1", "d-2", "d-3", "d-bad"}  # d-old started 200 days before: outside the window
    assert rows["d-1"]["credit_now"] == 1.0 and rows["d-3"]["credit_now"] == pytest.approx((180 - 40) / 150, abs=0.01)
    assert rows["d-bad"]["outcome"] == "failed" and rows["d-bad"]["credit_now"] == 0.0
    assert main(["dr", "history", "--date", DAY.isoformat(), "--site", "s2"]) == 0
    assert "No drill recorded" in capsys.readouterr().out
    assert main(["dr", "history", "--date", DAY.isoformat()]) == 0
    text = capsys.readouterr().out
    assert "4 drill(s) in the 180 days up to 2026-11-27" in text and "d-bad" in text


def test_the_scenarios_file_written_by_the_asset_helper(warehouse, targets):
    from qlrf.dr.scenarios import evaluate_scenarios

    table, configured = evaluate_scenarios(warehouse, DAY, targets, default_instance_types())
    rows = {r["scenario"]: r for r in table.to_pylist()}
    assert configured == ["lose-s1", "lose-r9"] and set(rows) == set(configured)
    assert rows["lose-s1"]["verdict"] == "breached" and rows["lose-s1"]["groups_breached"] == 2
    assert json.loads(rows["lose-s1"]["detail"])["affected_vms"] == 5
    assert rows["lose-r9"]["affected_vms"] == 1 and rows["lose-r9"]["capacity_fits"]


def test_path_defaults_to_the_policy_file():
    assert Path(load_targets().path).name == "dr_targets.yaml"
