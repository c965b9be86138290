"""Page tables: what the pages sum from them equals counting the per-VM tables directly.

A synthetic day (bench/fleet_gen.py, 3,000 VMs) scored by the real stages, its VMs split between two
organisations, then counted into the page tables by the function the assets run. Expected values
come from the per-VM Parquet files through pandas, never through qlrf.views.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, date, datetime, time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from bench.fleet_gen import build as generate
from qlrf.scoring import compliance
from qlrf.scoring.page_tables import AGE_BANDS, run_page_tables
from qlrf.scoring.report import fleet_tables
from qlrf.scoring.stages import run_compliance, run_dr, run_drift
from qlrf.views import compliance as compliance_views
from qlrf.views import dr as dr_views
from qlrf.views import drift as drift_views
from qlrf.views import images as image_views
from qlrf.views import overview
from qlrf.views.base import DataProblem, Scope

DAY = date(2026, 11, 27)
D = DAY.isoformat()


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    wh = generate(tmp_path_factory.mktemp("fleet"), DAY, 3000, "aws")
    as_of = datetime.combine(DAY, time(12), tzinfo=UTC)
    run_drift(wh, DAY, "aws", as_of)
    catalogue = compliance.load_catalogue()
    run_compliance(wh, DAY, "aws", as_of, catalogue, compliance.load_waivers(catalogue=catalogue))
    run_dr(wh, DAY, "aws", as_of)
    for table in ("vm_drift", "vm_compliance", "vm_dr"):  # two tenants, by VM (the same split in every table)
        data = pq.read_table(wh.file(table, DAY, "aws"))
        org = pa.array(["globex" if int(a.rsplit("-", 1)[-1]) % 3 == 0 else "acme" for a in data["asset_id"].to_pylist()])
        wh.write(table, data.set_column(data.schema.get_field_index("org"), "org", org), DAY, "aws")
    counted = run_page_tables(wh, DAY, "aws")
    return wh, counted, catalogue


def per_vm(wh, table: str, scope: Scope) -> pd.DataFrame:
    frame = pq.read_table(wh.file(table, DAY, "aws")).to_pandas()
    for column in ("site", "environment", "platform"):
        if getattr(scope, column):
            frame = frame[frame[column] == getattr(scope, column)]
    if scope.orgs is not None:
        frame = frame[frame["org"].isin(scope.orgs)]
    return frame


SCOPES = [Scope(D), Scope(D, site="lon1", environment="prod"), Scope(D, environment="dev", orgs=("globex",)),
          Scope(D, orgs=("acme",)), Scope(D, orgs=())]


def test_both_tenants_are_present(scored):
    wh, counted, _ = scored
    orgs = set(counted["drift_breakdown"][0]["org"].to_pylist())
    assert orgs == {"acme", "globex"}, "the fixture must split the fleet for the tenancy cases to mean anything"


def test_page_tables_count_every_vm_once(scored):
    wh, counted, _ = scored
    for name, source in (("drift_breakdown", "vm_drift"), ("compliance_controls", "vm_compliance"), ("dr_breakdown", "vm_dr")):
        table, path = counted[name]
        assert os.path.exists(path) and pc.sum(table["vms"]).as_py() == wh.num_rows(source, DAY, "aws") == 3000


@pytest.mark.parametrize("scope", SCOPES, ids=repr)
def test_drift_distributions_equal_counting_vm_drift(scored, scope):
    wh = scored[0]
    vms = per_vm(wh, "vm_drift", scope)
    label = vms["status"].where(~vms["status"].isin(["current", "behind"]), vms["versions_behind"].astype("Int64").astype(str))
    expected = vms.assign(label=label).groupby(["label", "status"]).size().to_dict()
    got = drift_views.versions_behind(wh, scope)
    assert dict(zip(zip(got["versions_behind"], got["status"], strict=True), got["vms"], strict=True)) == expected

    revoked = vms[vms["status"] == "revoked"].fillna({"revoked_reason": ""})
    expected = {k: (len(g), g["site"].nunique()) for k, g in revoked.groupby(["family", "image_version", "revoked_reason"])}
    got = drift_views.revoked_exposure(wh, scope)
    assert {(r.family, r.image_version, r.revoked_reason): (r.vms, r.sites) for r in got.itertuples()} == expected

    usage = vms.fillna({"family": "(unknown image)", "image_version": ""}).groupby(["family", "image_version", "status"]).size()
    got = image_views.usage(wh, scope)
    assert dict(zip(zip(got["family"], got["version"], got["status"], strict=True), got["vms"], strict=True)) == usage.to_dict()


@pytest.mark.parametrize("scope", SCOPES, ids=repr)
def test_control_pass_rates_equal_counting_vm_compliance(scored, scope):
    wh, _, catalogue = scored
    vms = per_vm(wh, "vm_compliance", scope)
    rates = compliance_views.control_rates(wh, scope, catalogue).set_index("control")
    assert (rates["vms"] == len(vms)).all()
    for control in (c.id for c in catalogue.controls):
        assert rates.loc[control, "failing_vms"] == sum(control in list(f) for f in vms["failed_controls"])
        assert rates.loc[control, "waived_vms"] == sum(control in list(w) for w in vms["waived_controls"])
    assert len(vms) == 0 or rates["failing_vms"].sum() > 0, "a control must fail somewhere for the comparison to bite"


def band(row) -> str:
    if pd.isna(row.last_snapshot_at):
        return AGE_BANDS[4]
    share = row.snapshot_age_hours / row.rpo_hours
    return AGE_BANDS[0] if share <= 0.5 else AGE_BANDS[1] if share <= 1 else AGE_BANDS[2] if share <= 2 else AGE_BANDS[3]


@pytest.mark.parametrize("scope", SCOPES, ids=repr)
def test_dr_distributions_equal_counting_vm_dr(scored, scope):
    wh = scored[0]
    vms = per_vm(wh, "vm_dr", scope)
    expected = vms.assign(band=[band(r) for r in vms.itertuples()]).groupby(["environment", "band"]).size().to_dict()
    got = dr_views.rpo_age_bands(wh, scope)
    assert dict(zip(zip(got["environment"], got["band"], strict=True), got["vms"], strict=True)) == expected
    for column, view in (("gap", dr_views.gaps), ("drill_gap", dr_views.drill_gaps)):
        expected = {k: (len(g), g["site"].nunique()) for k, g in vms.dropna(subset=[column]).groupby(column)}
        got = view(wh, scope)
        assert {r[column]: (r["vms"], r["sites"]) for r in got.to_dict("records")} == expected
    assert dr_views.regions(wh, scope) == sorted(vms["region"].unique())


@pytest.mark.parametrize("scope", SCOPES, ids=repr)
def test_drilldowns_stay_limited_and_count_every_match(scored, scope):
    wh = scored[0]
    cell = per_vm(wh, "vm_drift", replace(scope, site="lon1", environment="prod"))  # a cell keeps platform and orgs
    frame, total = drift_views.drilldown(wh, scope, "lon1", "prod", limit=7)
    assert total == len(cell) and len(frame) == min(7, len(cell)) and set(frame["asset_id"]) <= set(cell["asset_id"])
    dr = per_vm(wh, "vm_dr", scope)
    frame, total = dr_views.not_ready(wh, scope, limit=5)
    assert total == int((~dr["ready"]).sum()) and len(frame) == min(5, total)
    if total:
        ages = dr[~dr["ready"]]["snapshot_age_hours"]
        assert pd.isna(frame["snapshot_age_hours"].iloc[0]) or frame["snapshot_age_hours"].iloc[0] == ages.max()


def test_a_missing_page_table_says_what_and_how(scored, tmp_path):
    wh = scored[0]
    os.replace(wh.file("dr_breakdown", DAY, "aws"), tmp_path / "aside.parquet")
    try:
        with pytest.raises(DataProblem, match=rf"No dr_breakdown partition for {D}: produce it with `qlrf run --date {D}`"):
            dr_views.rpo_age_bands(wh, Scope(D))
    finally:
        os.replace(tmp_path / "aside.parquet", wh.file("dr_breakdown", DAY, "aws"))


@pytest.mark.parametrize("orgs", [("acme",), ("globex",), ("acme", "globex")], ids=repr)
def test_a_restricted_overview_equals_the_report_recomputed_from_per_vm_rows(scored, orgs):
    wh = scored[0]
    expected = [r for r in fleet_tables(wh, D, ("aws",), orgs)[0].to_pylist() if r["vms"]]
    frame = overview.fleet_row(wh, Scope(D, orgs=orgs))
    assert frame.astype(object).where(frame.notna(), None).to_dict("records") == expected
    assert {r["platform"] for r in expected} == {"aws", "all"} and expected[0]["compliance_score"] is not None


def test_a_reader_of_no_organisation_gets_no_headline(scored):
    with pytest.raises(DataProblem, match="No VMs of no organisation"):
        overview.fleet_row(scored[0], Scope(D, orgs=()))


def test_a_page_table_that_does_not_add_up_is_refused_and_the_previous_one_stays(scored, monkeypatch):
    """Checked before it replaces anything: a count that loses VMs never becomes the page table."""
    from qlrf.quality import PartitionRejected
    from qlrf.scoring import page_tables

    wh, _, _ = scored
    before = Path(wh.file("dr_breakdown", DAY, "aws")).read_bytes()
    real = page_tables.breakdown
    monkeypatch.setattr(page_tables, "breakdown", lambda *a, **k: real(*a, **k).slice(1))  # a counting defect
    with pytest.raises(PartitionRejected, match="dr_breakdown .* refused.*vm_dr holds 3000"):
        page_tables.run_page_table(wh, "dr_breakdown", DAY, "aws")
    assert Path(wh.file("dr_breakdown", DAY, "aws")).read_bytes() == before
