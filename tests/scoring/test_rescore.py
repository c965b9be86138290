"""`qlrf score` and qlrf.scoring.rescore: the assets' stage code, outside Dagster, facts built once."""

from __future__ import annotations

from datetime import date

import pyarrow.parquet as pq
import pytest

from bench.fleet_gen import build
from qlrf import cli
from qlrf.dates import partition_as_of
from qlrf.scoring import compliance, stages
from qlrf.scoring.rescore import parse_stages, score_partition

DAY = date(2026, 11, 27)
TODAY = date(2026, 11, 30)  # pinned: the CLI's --date must lie inside the partitions up to "today"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    return build(tmp_path_factory.mktemp("fleet"), DAY, 400)


def _rows(wh, table):
    rows = pq.read_table(wh.file(table, DAY, "aws")).to_pylist()
    return sorted(rows, key=lambda r: (r.get("asset_id") or "", r.get("site") or "", r.get("environment") or ""))


def test_stages_parse_in_graph_order_and_unknown_names_are_named():
    assert parse_stages("dr, drift") == ("drift", "dr")
    with pytest.raises(ValueError, match="unknown: scoring"):
        parse_stages("drift,scoring")
    with pytest.raises(ValueError, match="comma-separated"):
        parse_stages(" , ")


def test_shared_facts_give_the_same_tables_as_separate_stages(fleet):
    as_of = partition_as_of(DAY)
    catalogue = compliance.load_catalogue()
    stages.run_drift(fleet, DAY, "aws", as_of)
    stages.run_compliance(fleet, DAY, "aws", as_of, catalogue, compliance.load_waivers(catalogue=catalogue))
    stages.run_dr(fleet, DAY, "aws", as_of)
    separate = {t: _rows(fleet, t) for t in ("vm_drift", "vm_compliance", "vm_dr", "dr_scores")}

    timings = score_partition(fleet, DAY, "aws", ["dr", "compliance", "drift"])

    assert [t.stage for t in timings] == ["drift", "compliance", "dr"]
    assert all(t.seconds >= 0 and t.outcome.rows == 400 for t in timings)
    for table, rows in separate.items():
        assert _rows(fleet, table) == rows, table
    assert any(r["failed_controls"] for r in separate["vm_compliance"])  # the comparison is not vacuous


def test_facts_of_one_partition_refuse_another(fleet):
    stages.run_drift(fleet, DAY, "aws", partition_as_of(DAY))
    facts = stages.PartitionFacts(fleet, DAY, "aws", partition_as_of(DAY))
    with pytest.raises(ValueError, match="cannot score"):
        stages.run_dr(fleet, DAY, "aws", partition_as_of(date(2026, 11, 28)), facts=facts)


def test_qlrf_score_prints_each_stage_and_total(fleet, monkeypatch, capsys):
    monkeypatch.setenv("QLRF_WAREHOUSE", fleet.root)
    code = cli.main(["score", "--date", DAY.isoformat(), "--platform", "aws", "--stage", "drift,compliance"], today=TODAY)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "drift" in out and "vm_drift 400 rows" in out and "vm_compliance 400 rows" in out
    assert "vm_dr " not in out and "dr_scores" not in out
    assert out.strip().splitlines()[-1].startswith("total ")


def test_qlrf_score_names_a_missing_partition(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "empty"))
    code = cli.main(["score", "--date", DAY.isoformat(), "--platform", "gcp", "--stage", "drift"], today=TODAY)
    err = capsys.readouterr().err
    assert code == 2
    assert "golden_images" in err and "qlrf run --date 2026-11-27" in err
