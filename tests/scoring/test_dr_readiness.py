"""Readiness that decays: drill credit from the newest drill (full for 30 days, linear to 0 at 180, as
of the scored instant), the site cap after a failed drill, and the named gaps. Fixed dates only."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest

from qlrf.baselines.contracts import registry_table
from qlrf.dr.records import drills_table
from qlrf.scoring import dr
from tests.scoring.test_scoring import AS_OF, _facts, _family, _snap, _vm, ami


@pytest.fixture()
def registry():
    return registry_table([_family()], AS_OF)


def _drill(asset, days_ago, outcome="passed", drill=None, site="s1", rto=600.0, rto_objective=3600.0):
    start = AS_OF - timedelta(days=days_ago)
    return {"drill_id": drill or f"d-{asset}-{days_ago}", "plan_id": "p", "plan_hash": "sha256:0", "asset_id": asset,
            "platform": "aws", "site": site, "environment": "prod", "started_at": start,
            "ended_at": start + timedelta(minutes=30), "rto_seconds": rto, "rto_objective_seconds": rto_objective,
            "outcome": outcome, "cleaned_up": True}


def _rows(registry, vms, drills, snaps=None):
    con = _facts(registry, vms, snaps if snaps is not None else [_snap(v["asset_id"], 3) for v in vms])
    table = dr.vm_dr(con, drills_table(drills) if drills else None)
    return {r["asset_id"]: r for r in table.to_pylist()}, table


@pytest.mark.parametrize(("days_ago", "credit"), [
    (0, 1.0), (10, 1.0), (30, 1.0), (105, 0.5), (150, 0.2), (179.5, 0.5 / 150), (180.5, 0.0),
])
def test_a_passed_drill_counts_fully_for_30_days_then_decays_to_zero_at_180(registry, days_ago, credit):
    rows, _ = _rows(registry, [_vm("a", ami("1.10.0"))], [_drill("a", days_ago)])
    assert rows["a"]["drill_credit"] == pytest.approx(credit, abs=1e-4)
    assert rows["a"]["readiness_score"] == pytest.approx(40 + 30 + 30 * credit, abs=0.01)
    expected_gap = ("no drill in 180 days" if days_ago > 180 else
                    "last drill older than 30 days (credit decaying)" if days_ago > 30 else None)
    assert rows["a"]["drill_gap"] == expected_gap


def test_no_drill_still_scores_with_no_credit_and_a_named_gap(registry):
    rows, table = _rows(registry, [_vm("ok", ami("1.10.0")), _vm("rogue", "ami-0badc0de")], [])
    assert rows["ok"]["ready"] and rows["ok"]["readiness_score"] == 70.0 and rows["ok"]["gap"] is None
    assert rows["rogue"]["readiness_score"] == 40.0  # RPO met, not rebuildable, no drill
    assert {r["drill_gap"] for r in rows.values()} == {"no drill in 180 days"}
    [score] = dr.dr_scores(table).to_pylist()
    assert (score["readiness_score"], score["drill_credit"], score["no_drill_vms"], score["capped"]) == (55.0, 0.0, 2, False)


def test_a_newer_failed_drill_takes_the_credit_and_caps_the_whole_site(registry):
    vms = [_vm("a", ami("1.10.0")), _vm("b", ami("1.10.0")), _vm("c", ami("1.10.0"), env="dev"),
           _vm("x", ami("1.10.0"), site="s2")]
    drills = [_drill("a", 20), _drill("a", 2, outcome="failed"), _drill("b", 5), _drill("c", 5), _drill("x", 1, site="s2")]
    rows, table = _rows(registry, vms, drills)
    assert rows["a"]["drill_credit"] == 0.0 and rows["a"]["last_drill_outcome"] == "failed"
    assert rows["a"]["drill_gap"] == "last drill failed" and rows["b"]["drill_credit"] == 1.0
    scores = {(s["site"], s["environment"]): s for s in dr.dr_scores(table).to_pylist()}
    # Every environment of s1 is capped at 50, although dev's own VM passed; s2 is not.
    assert scores[("s1", "prod")]["capped"] and scores[("s1", "dev")]["capped"]
    assert scores[("s1", "dev")]["readiness_score"] == dr.FAILED_DRILL_CAP
    assert scores[("s1", "prod")]["readiness_score"] == 50.0 and scores[("s1", "prod")]["failed_drill_vms"] == 1
    assert "capped at 50" in scores[("s1", "prod")]["cap_reason"]
    assert not scores[("s2", "prod")]["capped"] and scores[("s2", "prod")]["readiness_score"] == 100.0


@pytest.mark.parametrize("outcome", ["timed_out", "deviated"])
def test_timed_out_and_deviated_drills_cap_too(registry, outcome):
    rows, table = _rows(registry, [_vm("a", ami("1.10.0"))], [_drill("a", 3, outcome=outcome)])
    assert rows["a"]["drill_gap"] == f"last drill {outcome.replace('_', ' ')}"
    assert dr.dr_scores(table).to_pylist()[0]["capped"]


def test_an_rto_above_objective_is_a_named_gap_and_counted(registry):
    rows, table = _rows(registry, [_vm("a", ami("1.10.0")), _vm("b", ami("1.10.0"))],
                        [_drill("a", 3, rto=5400.0), _drill("b", 3, rto=900.0)])
    assert rows["a"]["drill_gap"] == "RTO measured above objective" and rows["a"]["rto_over_objective"]
    assert rows["a"]["rto_measured_seconds"] == 5400.0 and rows["b"]["drill_gap"] is None
    [score] = dr.dr_scores(table).to_pylist()
    assert (score["rto_gaps"], score["drilled_vms"], score["stale_drill_vms"]) == (1, 2, 0)


def test_a_drill_after_the_scored_instant_does_not_count(registry):
    rows, _ = _rows(registry, [_vm("a", ami("1.10.0"))], [_drill("a", -1)])  # started tomorrow
    assert rows["a"]["last_drill_at"] is None and rows["a"]["drill_credit"] == 0.0


def test_scores_keep_their_existing_columns_first(registry):
    _, table = _rows(registry, [_vm("a", ami("1.10.0"))], [])
    assert dr.dr_scores(table).schema.names[:8] == ["platform", "site", "environment", "vms", "ready_vms", "dr_readiness",
                                                    "rpo_breaches", "p95_snapshot_age_hours"]
    assert isinstance(table, pa.Table) and table.schema.names[:14] == [
        "asset_id", "platform", "account", "region", "site", "environment", "state", "last_snapshot_at",
        "snapshot_age_hours", "rpo_hours", "rpo_met", "rebuildable", "ready", "gap"]
