"""qlrf.views over a small hand-written warehouse: filters in SQL, limits, missing and corrupt partitions."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pytest

from qlrf.scoring.page_tables import run_page_table
from qlrf.views import drift, health, overview
from qlrf.views.base import DataProblem, Scope, scan
from qlrf.warehouse import Warehouse

DAY = "2026-11-20"


def _vm_drift(platform: str, rows: list[tuple[str, str, str, int | None, str]]) -> pa.Table:
    return pa.table({
        "asset_id": [f"{platform}-{i}" for i in range(len(rows))], "platform": [platform] * len(rows),
        "site": [r[0] for r in rows], "environment": [r[1] for r in rows], "status": [r[2] for r in rows],
        "versions_behind": pa.array([r[3] for r in rows], pa.int32()), "family": ["ubuntu"] * len(rows),
        "image_version": [r[4] for r in rows], "revoked_reason": [("CVE-1" if r[2] == "revoked" else None) for r in rows],
        **{c: [c] * len(rows) for c in ("account", "region", "owner", "state", "image_ref", "current_version", "severity")},
        "days_behind": pa.array([(r[3] or 0) * 30 for r in rows], pa.int32()),
    })


@pytest.fixture()
def wh(tmp_path) -> Warehouse:
    wh = Warehouse(str(tmp_path / "wh"))
    wh.write("vm_drift", _vm_drift("aws", [("lon1", "prod", "current", 0, "3"), ("lon1", "prod", "behind", 2, "1"),
                                           ("lon1", "dev", "revoked", None, "2"), ("fra1", "prod", "behind", 1, "2")]), DAY, "aws")
    wh.write("vm_drift", _vm_drift("gcp", [("lon1", "prod", "behind", 1, "2"), ("fra1", "dev", "current", 0, "3")]), DAY, "gcp")
    for platform in ("aws", "gcp"):  # the distributions are summed from the page table the pipeline counts
        run_page_table(wh, "drift_breakdown", DAY, platform)
    wh.write("drift_scores", pa.table({"platform": ["aws", "aws"], "site": ["lon1", "lon1"], "environment": ["prod", "prod"],
                                       "vms": [10, 30], "drift_score": [10.0, 50.0], "on_current": [5, 10], "revoked": [0, 1]}),
             DAY, "aws")
    for i, day in enumerate(("2026-11-18", "2026-11-19", DAY)):
        wh.write("fleet_report", pa.table({"platform": ["aws", "all"], "vms": [10 + i, 20 + i], "pct_current_golden": [50.0 + i, 60.0 + i],
                                           "compliance_score": [80.0, 81.0 - i], "dr_readiness": [40.0, 40.0],
                                           "drift_score": [30.0, 30.0 + 2 * i], "on_revoked_image": [1, 1]}), day)
    return wh


def test_filters_go_into_sql_and_platforms_pick_files(wh):
    everything = drift.versions_behind(wh, Scope(DAY))
    assert everything["vms"].sum() == 6
    lon_prod = drift.versions_behind(wh, Scope(DAY, site="lon1", environment="prod"))
    assert dict(zip(lon_prod["versions_behind"], lon_prod["vms"], strict=True)) == {"0": 1, "1": 1, "2": 1}
    only_gcp = drift.versions_behind(wh, Scope(DAY, platform="gcp"))
    assert only_gcp["vms"].sum() == 2
    revoked = drift.revoked_exposure(wh, Scope(DAY))
    assert revoked.to_dict("records") == [{"family": "ubuntu", "image_version": "2", "revoked_reason": "CVE-1", "vms": 1,
                                           "sites": 1, "environments": "dev"}]


def test_a_filter_value_is_data_not_sql(wh):
    assert drift.versions_behind(wh, Scope(DAY, site="lon1' OR '1'='1")).empty


def test_drilldown_is_limited_and_counts_the_rest(wh):
    rows, total = drift.drilldown(wh, Scope(DAY), "lon1", "prod", limit=2)
    assert total == 3 and len(rows) == 2
    assert list(rows["versions_behind"]) == [2, 1]  # furthest behind first


def test_heatmap_weights_by_vms(wh):
    cells = drift.heatmap(wh, Scope(DAY))
    assert cells.to_dict("records")[0]["drift_score"] == 40.0  # (10*10 + 50*30) / 40, not the plain mean 30


def test_headlines_compare_with_the_previous_run(wh):
    vms, vms_delta, items, before = overview.headlines(wh, Scope(DAY))
    assert (vms, vms_delta, before) == (22, 1, "2026-11-19")
    by_key = {h.key: h for h in items}
    assert (by_key["pct_current_golden"].value, by_key["pct_current_golden"].delta) == (62.0, 1.0)
    assert by_key["drift_score"].delta == 2.0
    aws = overview.headlines(wh, Scope(DAY, platform="aws"))
    assert aws[0] == 12
    assert len(overview.history(wh, DAY)) == 3


def test_missing_partitions_say_what_and_how(wh):
    with pytest.raises(DataProblem, match=r"No drift_breakdown partition for 2026-11-21: produce it with `qlrf run --date 2026-11-21`"):
        drift.versions_behind(wh, Scope("2026-11-21"))
    with pytest.raises(DataProblem, match=r"No drift_breakdown partition for 2026-11-20\|vsphere"):
        drift.versions_behind(wh, Scope(DAY, platform="vsphere"))
    gaps = health.gaps(wh, DAY, ("vm_drift", "fleet_summary"))
    assert {(g.table, g.platform, g.problem) for g in gaps} == {
        ("vm_drift", "azure", "missing"), ("vm_drift", "vsphere", "missing"), ("fleet_summary", None, "missing")}
    assert health.missing_platforms(gaps) == ["azure", "vsphere"]
    assert "qlrf run --date 2026-11-20" in health.explain(gaps, DAY)


def test_a_corrupt_file_is_named(wh):
    with open(wh.file("vm_drift", DAY, "gcp"), "r+b") as handle:
        handle.truncate(50)
    with pytest.raises(DataProblem) as caught:
        scan(wh, "vm_drift", Scope(DAY), "SELECT count(*) FROM t")
    message = str(caught.value)
    assert "platform=gcp" in message and "cannot be read" in message and "\n" not in message
    gaps = health.gaps(wh, DAY, ("vm_drift",))
    assert [(g.platform, g.problem.split(":")[0]) for g in gaps if g.platform == "gcp"] == [("gcp", "unreadable")]


def test_waiver_states_are_relative_to_the_given_day():
    from qlrf.scoring.compliance import Waiver
    from qlrf.views.compliance import waiver_table

    on = date(2026, 11, 20)
    waivers = [Waiver(id=f"W-{n}", control="RF-X", owner="o", reason="r", expires=on + timedelta(days=n), match={"site": "lon1"})
               for n in (-1, 0, 30, 31)]
    table = waiver_table(waivers, on).set_index("waiver")
    assert table["state"].to_dict() == {"W--1": "expired", "W-0": "expiring soon", "W-30": "expiring soon", "W-31": "active"}
