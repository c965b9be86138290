"""Every Control Tower page under AppTest: empty warehouse, one day, several days and damaged data.

Expected numbers are computed here straight from the Parquet files (pyarrow/pandas), not through
the views the pages use.
"""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.dashboard.conftest import EARLIER
from tests.dashboard.support import PAGES, open_page, tables, texts

WAREHOUSE_PAGES = ("overview", "drift", "compliance", "dr", "sites", "images")


def frame(wh, table: str, day: str, platforms=("aws", "azure", "gcp", "vsphere")) -> pd.DataFrame:
    if wh.exists(table, day):
        return pq.read_table(wh.file(table, day)).to_pandas()
    return pd.concat([pq.read_table(wh.file(table, day, p)).to_pandas() for p in platforms if wh.exists(table, day, p)])


def admin_locally(monkeypatch) -> None:
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_USER", "admin@example.com")
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_ROLES", "admin@*")


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_an_empty_warehouse(empty_warehouse, monkeypatch, page):
    if page == "settings":  # admin only (issue 14): a trusted local admin opens it
        admin_locally(monkeypatch)
    at = open_page(page)
    if page in WAREHOUSE_PAGES:
        assert "No fleet report" in texts(at) and "make run" in texts(at)
    assert "Traceback" not in texts(at)


def test_settings_masks_secrets_and_shows_relative_paths(empty_warehouse, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-123456")
    monkeypatch.setenv("QLRF_POSTGRES_URL", "postgresql://u:hunter2@db.example:5432/qlrf")
    admin_locally(monkeypatch)
    at = open_page("settings")
    config = tables(at, "variable")[0]
    shown = dict(zip(config["variable"], config["value"], strict=True))
    assert shown["OPENAI_API_KEY"] == "set (value hidden)"
    assert "hunter2" not in shown["QLRF_POSTGRES_URL"] and "db.example" in shown["QLRF_POSTGRES_URL"]
    assert not any("sk-live" in str(v) or "hunter2" in str(v) for d in at.dataframe for v in d.value.to_numpy().ravel())
    autonomy = tables(at, "autonomy_mode")[0]
    assert dict(zip(autonomy["environment"], autonomy["autonomy_mode"], strict=True))["dev"] == "full_auto"
    connectors = tables(at, "last_discovery")[0]
    assert set(connectors["last_discovery"]) == {"never"}
    assert any(f.endswith("remediation.yaml") for f in tables(at, "sha256")[0]["file"])


def test_overview_one_day(one_day):
    wh, day = one_day
    report = frame(wh, "fleet_report", day).set_index("platform")
    at = open_page("overview")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["VMs"] == f"{int(report.loc['all', 'vms']):,}" == "12,200"
    assert metrics["Compliance score"] == f"{report.loc['all', 'compliance_score']:.1f}%"
    assert metrics["DR readiness"] == f"{report.loc['all', 'dr_readiness']:.1f}%"
    assert "No earlier run to compare with" in texts(at)
    assert "Source: rules" in texts(at)  # no model configured in tests
    assert list(tables(at, "pct_current_golden")[0]["platform"]) == ["aws", "azure", "gcp", "vsphere", "all"]
    assert at.selectbox(key="date").value == day


def test_platform_filter_comes_from_the_link_and_follows_the_reader(one_day):
    wh, day = one_day
    report = frame(wh, "fleet_report", day).set_index("platform")
    at = open_page("overview", {"platform": "aws", "date": day})
    assert {m.label: m.value for m in at.metric}["VMs"] == f"{int(report.loc['aws', 'vms']):,}"
    at.switch_page("app_pages/drift.py").run()
    assert not at.exception
    assert at.selectbox(key="platform").value == "aws" and at.query_params.get("platform") == "aws"
    cells = tables(at, "drift_score")[0]
    assert cells["vms"].sum() == report.loc["aws", "vms"]


def test_drift_one_day(one_day):
    wh, day = one_day
    scores = frame(wh, "drift_scores", day)
    vm = frame(wh, "vm_drift", day)
    at = open_page("drift")
    cells = tables(at, "drift_score")[0]
    lon_prod = scores[(scores["site"] == "lon1") & (scores["environment"] == "prod")]
    expected = round((lon_prod["drift_score"] * lon_prod["vms"]).sum() / lon_prod["vms"].sum(), 1)
    row = cells[(cells["site"] == "lon1") & (cells["environment"] == "prod")].iloc[0]
    assert row["drift_score"] == pytest.approx(expected) and row["vms"] == lon_prod["vms"].sum()
    revoked = tables(at, "revoked_reason")[0]
    assert revoked["vms"].sum() == (vm["status"] == "revoked").sum()
    behind = next(t for t in tables(at, "versions_behind") if "asset_id" not in t.columns)
    assert behind["vms"].sum() == len(vm)
    # the drill-down opens on the worst cell and is limited
    worst = cells.iloc[cells["drift_score"].to_numpy().argmax()]
    drill = tables(at, "current_version")[0]
    in_cell = vm[(vm["site"] == worst["site"]) & (vm["environment"] == worst["environment"])]
    assert len(drill) == min(500, len(in_cell)) and set(drill["asset_id"]) <= set(in_cell["asset_id"])
    assert "One day of history so far" in texts(at)


def test_compliance_one_day(one_day):
    wh, day = one_day
    vm = frame(wh, "vm_compliance", day)
    at = open_page("compliance")
    controls = tables(at, "pass_rate")[0].set_index("control")
    failing = vm["failed_controls"].explode().value_counts()
    for control, count in failing.items():
        assert controls.loc[control, "failing_vms"] == count
        assert controls.loc[control, "pass_rate"] == pytest.approx(round(100 * (1 - count / len(vm)), 1))
    first = at.selectbox(key="control").value
    listed = tables(at, "failed_controls")[0]
    assert len(listed) == min(500, failing[first])
    waivers = tables(at, "days_left")[0].set_index("waiver")
    assert waivers.loc["W-2026-009", "state"] == "expired"  # expired 2026-10-31, data day 2026-11-20
    assert waivers.loc["W-2026-014", "state"] == "active"


def test_dr_one_day(one_day):
    wh, day = one_day
    vm = frame(wh, "vm_dr", day)
    at = open_page("dr")
    bands = tables(at, "band")[0]
    assert bands["vms"].sum() == len(vm)
    prod = vm[vm["environment"] == "prod"]
    over = prod[prod["snapshot_age_hours"] > 2 * prod["rpo_hours"]]
    assert bands[(bands["band"] == "over 2x the RPO") & bands["environment"].str.startswith("prod")]["vms"].sum() == len(over)
    gaps = tables(at, "gap")[0]
    assert dict(zip(gaps["gap"], gaps["vms"], strict=True)) == vm["gap"].dropna().value_counts().to_dict()
    assert "No drill recorded in the 180 days" in texts(at)  # the sample estate has no drills yet
    drill_gaps = tables(at, "drill_gap")[0]
    assert dict(zip(drill_gaps["drill_gap"], drill_gaps["vms"], strict=True)) == {"no drill in 180 days": len(vm)}


def test_sites_one_site_by_link(one_day):
    wh, day = one_day
    drift = frame(wh, "drift_scores", day)
    at = open_page("sites", {"site": "fra1"})
    assert "fra1" in [h.value for h in at.header]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["VMs"] == f"{int(drift[drift['site'] == 'fra1']['vms'].sum()):,}"
    rows = tables(at, "dr_readiness")[0]
    assert set(rows["platform"]) == {"aws", "azure", "gcp", "vsphere"}
    assert "No open patch plan for this site" in texts(at)


def test_sites_without_a_site_lists_them(one_day):
    at = open_page("sites")
    assert "Choose a site" in texts(at)
    assert "lon1" in set(tables(at, "revoked")[0]["site"])


def test_images_one_day(one_day):
    wh, day = one_day
    registry = frame(wh, "golden_images", day)
    packages = frame(wh, "image_packages", day)
    at = open_page("images")
    revocations = tables(at, "revoked_reason")[0]
    assert len(revocations) == registry[registry["revoked"]][["family", "version"]].drop_duplicates().shape[0]
    assert len(at.get("graphviz_chart")) == 1
    at.text_input(key="sbom").input("openssl").run()
    assert not at.exception
    matches = packages[packages["package"].str.lower().str.contains("openssl") | packages["purl"].fillna("").str.lower().str.contains("openssl")]
    assert f"{len(matches):,} matches" in texts(at)
    assert len(tables(at, "purl")[0]) == min(500, len(matches))


def test_several_days_show_deltas_and_trends(three_days):
    wh, day = three_days
    now = frame(wh, "fleet_report", day).set_index("platform").loc["all"]
    before = frame(wh, "fleet_report", EARLIER[-1]).set_index("platform").loc["all"]
    at = open_page("overview")
    assert f"Change since {EARLIER[-1]}" in texts(at)
    golden = next(m for m in at.metric if m.label == "On current golden image")
    assert golden.delta == f"{now['pct_current_golden'] - before['pct_current_golden']:+.1f} pts" == "+2.0 pts"
    assert "Last 3 days" in texts(at)
    assert len(at.get("vega_lite_chart")) >= 4
    at.switch_page("app_pages/drift.py").run()
    assert not at.exception and "One day of history" not in texts(at)
    at.selectbox(key="date").set_value(EARLIER[0]).run()  # an earlier day has roll-ups only
    assert not at.exception
    assert "vm_drift" in texts(at) and "qlrf run --date 2026-11-18" in texts(at)


def test_a_missing_platform_is_named_with_the_command(one_day):
    wh, day = one_day
    import shutil

    for table in ("inventory", "vm_drift", "drift_scores", "vm_compliance", "compliance_scores", "vm_dr", "dr_scores"):
        shutil.rmtree(wh.partition_dir(table, day, "gcp"))
    for page in ("overview", "drift", "compliance", "dr"):
        at = open_page(page)
        said = texts(at)
        assert f"{day}|gcp is missing" in said and f"qlrf run --date {day}" in said, page
    gcp_vms = int(frame(wh, "fleet_report", day).set_index("platform").loc["gcp", "vms"])
    at = open_page("drift")
    assert tables(at, "drift_score")[0]["vms"].sum() == 12_200 - gcp_vms


def test_a_corrupt_partition_is_named_not_a_traceback(one_day):
    wh, day = one_day
    path = wh.file("vm_drift", day, "aws")
    with open(path, "r+b") as handle:
        handle.truncate(100)
    at = open_page("drift")
    said = texts(at)
    assert "vm_drift" in said and "platform=aws" in said and "unreadable" in said
    assert tables(at, "drift_score")  # the heatmap from drift_scores still renders
