"""Proactive insights, one kind at a time over small hand-made tables, then ranking and row checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pytest

from qlrf.ai import insights as ins
from qlrf.scoring.compliance import Waiver

DAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC)
THRESHOLDS = {"dev": 60.0, "staging": 45.0, "prod": 30.0}


def _registry(revoked: dict[tuple[str, str], str]) -> pa.Table:
    versions = [("debian-12", "2.1.3"), ("debian-12", "2.2.3"), ("rhel-9", "2.2.1")]
    return pa.Table.from_pylist([
        {"family": f, "version": v, "revoked": (f, v) in revoked, "revoked_reason": revoked.get((f, v))}
        for f, v in versions
    ])


def _vm(site, env, family, version, state="running", platform="aws") -> dict:
    return {"site": site, "environment": env, "platform": platform, "state": state, "family": family,
            "image_version": version}


VMS = pa.Table.from_pylist([{**vm, "asset_id": f"vm-{n:02d}"} for n, vm in enumerate([
    _vm("syd1", "dev", "debian-12", "2.2.3"),
    _vm("syd1", "dev", "debian-12", "2.2.3", platform="gcp"),
    _vm("syd1", "dev", "rhel-9", "2.2.1"),
    _vm("syd1", "dev", "debian-12", "2.2.3", state="stopped"),  # not running: not counted
    _vm("lon1", "prod", "debian-12", "2.2.3"),
    _vm("lon1", "prod", "debian-12", "2.1.3"),  # not revoked
    _vm("fra1", "prod", "rhel-9", "2.2.1"),  # revoked before: not new
], start=1)])


def test_new_revocations_count_running_vms_per_site_and_environment():
    previous = _registry({("rhel-9", "2.2.1"): "old CVE"})
    today = _registry({("rhel-9", "2.2.1"): "old CVE", ("debian-12", "2.2.3"): "CVE-2026-0001 in openssl"})
    found = {i.subject: i for i in ins.new_revocations(today, previous, VMS, previous_day="2026-11-19")}
    assert set(found) == {"syd1/dev", "lon1/prod"}  # fra1 runs only the old revocation
    syd = found["syd1/dev"]
    assert syd.facts["running_vms"] == 2 and syd.facts["platforms"] == 2
    assert syd.facts["images"] == ["debian-12 2.2.3"] and syd.facts["reasons"] == ["CVE-2026-0001 in openssl"]
    assert syd.facts["revoked_since"] == "2026-11-19" and syd.facts["asset_ids"] == ["vm-01", "vm-02"]
    assert (syd.agent, syd.task_type, syd.intent) == ("patch", "remediate_drift", "patch the revoked images in syd1 dev")
    assert syd.score == 60 + 0 + 2 / 5
    assert found["lon1/prod"].score == 60 + 20 + 1 / 5 and found["lon1/prod"].severity == "critical"


def test_without_a_previous_registry_every_revocation_is_new():
    today = _registry({("rhel-9", "2.2.1"): "x"})
    found = ins.new_revocations(today, None, VMS)
    assert {i.subject for i in found} == {"syd1/dev", "fra1/prod"}
    assert all(i.facts["revoked_since"] == "no previous registry" for i in found)


def test_nothing_newly_revoked_is_no_finding():
    same = _registry({("rhel-9", "2.2.1"): "x"})
    assert ins.new_revocations(same, same, VMS) == []


def _trend(site, env, score, forecast):
    return {"site": site, "environment": env, "drift_score": score, "forecast_next_week": forecast,
            "change_per_week": round(forecast - score, 2), "vms": 100, "method": "least squares over 10 daily partitions"}


def test_drift_forecast_flags_only_sites_that_cross_their_environments_threshold():
    trends = pa.Table.from_pylist([
        _trend("syd1", "staging", 40.0, 47.5),  # crosses 45
        _trend("lon1", "staging", 40.0, 44.9),  # stays below
        _trend("sin1", "prod", 35.0, 40.0),  # already above 30: a breach, not a forecast
        _trend("nyc1", "dev", 59.0, 60.0),  # reaches exactly 60
        _trend("fra1", "unknown", 20.0, 31.0),  # unknown environment: strictest threshold (30)
        _trend("sfo1", "dev", 10.0, float("nan")),
    ])
    found = {i.subject: i for i in ins.drift_forecasts(trends, THRESHOLDS)}
    assert set(found) == {"syd1/staging", "nyc1/dev", "fra1/unknown"}
    syd = found["syd1/staging"]
    assert syd.facts["threshold"] == 45.0 and syd.facts["forecast_next_week"] == 47.5
    assert syd.score == 45 + 10 + 2 * 2.5
    assert found["fra1/unknown"].facts["threshold"] == 30.0
    assert syd.agent == "drift" and syd.task_type == "remediate_drift" and "syd1 staging" in syd.intent


def _waiver(wid, control, expires, **match) -> Waiver:
    return Waiver.model_validate({"id": wid, "control": control, "owner": "payments", "reason": "r",
                                  "expires": expires, "match": match})


VMC = pa.Table.from_pylist([
    {"asset_id": f"vm-{n}", "platform": "aws", "account": "1", "site": site, "environment": "prod", "owner": "payments",
     "failed_controls": failed, "waived_controls": waived}
    for n, (site, failed, waived) in enumerate([
        ("lon1", [], ["RF-NET-001"]), ("lon1", [], ["RF-NET-001"]), ("fra1", [], ["RF-NET-001"]),
        ("lon1", ["RF-IMG-003"], []), ("lon1", ["RF-IMG-003"], []), ("lon1", ["RF-IMG-003"], []),
    ])
], schema=pa.schema([("asset_id", pa.string()), ("platform", pa.string()), ("account", pa.string()),
                     ("site", pa.string()), ("environment", pa.string()), ("owner", pa.string()),
                     ("failed_controls", pa.list_(pa.string())), ("waived_controls", pa.list_(pa.string()))]))


def test_waivers_expiring_within_the_window_and_expired_ones_with_their_vms():
    waivers = [
        _waiver("W-1", "RF-NET-001", "2026-11-30", site="lon1"),  # 10 days left
        _waiver("W-2", "RF-IMG-003", "2026-11-01", site="lon1"),  # expired
        _waiver("W-3", "RF-NET-001", "2026-12-05", site="fra1"),  # 15 days: outside the window
        _waiver("W-4", "RF-NET-001", "2026-11-20", site="fra1"),  # expires today: still active, 0 days left
    ]
    found = {i.subject: i for i in ins.waiver_expiries(waivers, DAY, VMC)}
    assert set(found) == {"W-1", "W-2", "W-4"}
    assert found["W-1"].facts == {"waiver": "W-1", "control": "RF-NET-001", "owner": "payments", "expires": "2026-11-30",
                                  "days_left": 10, "expired": False, "vms_waived": 2}
    assert found["W-2"].facts["expired"] is True and found["W-2"].facts["vms_failing"] == 3
    assert found["W-4"].facts["days_left"] == 0 and found["W-4"].facts["vms_waived"] == 1
    assert found["W-1"].score == 40 + 4 + 0.2 and found["W-2"].score == 55 + 0.6
    assert found["W-1"].agent == "compliance" and found["W-1"].intent == "compliance report for RF-NET-001 in lon1 (waiver W-1)"


def test_waivers_without_compliance_rows_still_report_the_date():
    (only,) = ins.waiver_expiries([_waiver("W-1", "RF-NET-001", "2026-11-25", owner="payments")], DAY, None)
    assert only.facts["vms_waived"] is None and only.facts["days_left"] == 5
    assert only.intent == "compliance report for RF-NET-001 (waiver W-1)"


def test_dr_gaps_roll_platforms_up_per_site_and_environment():
    dr = pa.Table.from_pylist([
        {"platform": "aws", "site": "syd1", "environment": "prod", "vms": 100, "ready_vms": 50, "rpo_breaches": 40},
        {"platform": "gcp", "site": "syd1", "environment": "prod", "vms": 100, "ready_vms": 100, "rpo_breaches": 0},
        {"platform": "aws", "site": "lon1", "environment": "dev", "vms": 10, "ready_vms": 10, "rpo_breaches": 0},
    ])
    (gap,) = ins.dr_gaps(dr, objective=90)
    assert gap.subject == "syd1/prod"
    assert gap.facts == {"site": "syd1", "environment": "prod", "vms": 200, "ready_vms": 150, "dr_readiness": 75.0,
                         "without_recent_restore_point": 40, "objective": 90}
    assert gap.score == 30 + 20 + 7.5 and gap.task_type == "dr_drill" and gap.agent == "dr"


@dataclass
class _Task:
    id: str
    expires_at: datetime | None
    state: str = "pending_approval"
    environment: str = "prod"
    platform: str = "aws"
    site: str | None = "syd1"
    risk_level: str = "high"


def test_approvals_about_to_expire_within_the_window_only():
    tasks = [
        _Task("t-soon", NOW + timedelta(hours=1, minutes=30)),
        _Task("t-later", NOW + timedelta(hours=7)),
        _Task("t-gone", NOW - timedelta(minutes=1)),
        _Task("t-approved", NOW + timedelta(hours=1), state="approved"),
        _Task("t-none", None),
    ]
    (soon,) = ins.approval_expiries(tasks, NOW)
    assert soon.subject == "t-soon" and soon.facts["hours_left"] == 1.5
    assert soon.score == 50 + 20 * (1 - 1.5 / 6) + 10
    assert soon.task_type == "answer" and "syd1 prod" in soon.intent


def _insight(kind, subject, score) -> ins.Insight:
    return ins.Insight(kind=kind, subject=subject, score=score, title="t", agent="dr", task_type="dr_drill",
                       intent="schedule a dr drill", facts={"n": 1})


def test_rank_dedups_by_kind_and_subject_and_orders_deterministically():
    found = [_insight("dr_gap", "b", 50), _insight("dr_gap", "b", 70), _insight("dr_gap", "a", 50),
             _insight("new_revocation", "a", 50), _insight("drift_forecast", "z", 90)]
    ranked = ins.rank(found)
    assert [(i.kind, i.subject, i.score) for i in ranked] == [
        ("drift_forecast", "z", 90), ("dr_gap", "b", 70), ("new_revocation", "a", 50), ("dr_gap", "a", 50)]
    assert ins.rank(reversed(found)) == ranked


def test_table_rows_are_well_formed_and_empty_is_valid():
    table = ins.insights_table(DAY, [_insight("dr_gap", "a", 81), _insight("dr_gap", "b", 44.9)])
    rows = table.to_pylist()
    assert [(r["rank"], r["severity"]) for r in rows] == [(1, "critical"), (2, "low")]
    assert json.loads(rows[0]["facts"]) == {"n": 1} and ins.row_problems(table) == []
    empty = ins.insights_table(DAY, [])
    assert empty.num_rows == 0 and empty.schema == ins.INSIGHTS_SCHEMA and ins.row_problems(empty) == []


def test_row_problems_name_each_bad_row():
    rows = ins.insights_table(DAY, [_insight("dr_gap", "a", 81)]).to_pylist()
    rows[0].update(severity="low", agent="oracle", facts="[1]")
    rows.append({**rows[0], "rank": 3, "kind": "gossip", "score": 120.0})
    problems = ins.row_problems(pa.Table.from_pylist(rows, schema=ins.INSIGHTS_SCHEMA))
    assert "rank is not 1..n in order" in problems
    assert "rank 1 (dr_gap a): severity 'low' does not match score 81.0" in problems
    assert any(p.startswith("rank 1 (dr_gap a): agent 'oracle'") for p in problems)
    assert "rank 1 (dr_gap a): facts is not a JSON object" in problems
    assert "rank 3 (gossip a): unknown kind" in problems and "rank 3 (gossip a): score 120.0 outside 0-100" in problems


def test_unknown_kind_is_refused_by_rank():
    with pytest.raises(ValueError, match="insight kind 'gossip'"):
        ins.rank([_insight("gossip", "a", 1)])


def test_parquet_files_give_the_same_findings_as_tables(tmp_path):
    import pyarrow.parquet as pq

    half = VMS.num_rows // 2
    paths = [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    pq.write_table(VMS.slice(0, half), paths[0])
    pq.write_table(VMS.slice(half), paths[1])
    today = _registry({("debian-12", "2.2.3"): "x", ("rhel-9", "2.2.1"): "y"})
    assert ins.new_revocations(today, None, paths) == ins.new_revocations(today, None, VMS)
    pq.write_table(VMC, tmp_path / "vmc.parquet")
    waivers = [_waiver("W-1", "RF-NET-001", "2026-11-30", site="lon1")]
    assert ins.waiver_expiries(waivers, DAY, str(tmp_path / "vmc.parquet")) == ins.waiver_expiries(waivers, DAY, VMC)
