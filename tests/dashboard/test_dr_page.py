"""The DR page with drill evidence planted through the dr_drills seam: drills listed with their RTO/RPO
against objectives, readiness credit and the site cap, and the failover what-if for a chosen site.

Expected figures come from the planted rows and the Parquet files, not from the views the page uses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from qlrf.dr.records import record_drill
from qlrf.scoring.stages import run_dr
from tests.dashboard.support import open_page, tables, texts


def _drill(drill_id, vm, start, outcome="passed", rto=600.0):
    return {"drill_id": drill_id, "plan_id": "drill-syd1", "plan_hash": "sha256:ab", "asset_id": vm["asset_id"],
            "platform": "aws", "site": vm["site"], "environment": vm["environment"], "instance_type": vm["instance_type"],
            "target": "ap-southeast-1", "restore_point_at": start - timedelta(hours=2), "started_at": start,
            "healthy_at": start + timedelta(seconds=rto), "ended_at": start + timedelta(seconds=rto + 120),
            "rto_seconds": rto, "rpo_achieved_seconds": 7200.0, "rto_objective_seconds": 3600.0,
            "rpo_objective_seconds": 86400.0, "outcome": outcome, "reason": None if outcome == "passed" else "step launch: quota",
            "steps": json.dumps([]), "cleaned_up": True}


@pytest.fixture()
def drilled_day(one_day):
    """The sample day with a passed drill of three syd1 m6i.large VMs 40 days back and a failed one in sin1."""
    wh, day = one_day
    inv = pq.read_table(wh.file("inventory", day, "aws")).to_pandas()
    syd = inv[(inv["site"] == "syd1") & (inv["instance_type"] == "m6i.large") & (inv["state"] == "running")].head(3)
    sin = inv[inv["site"] == "sin1"].head(1)
    end = datetime.combine(date.fromisoformat(day), datetime.max.time(), tzinfo=UTC).replace(microsecond=0)
    passed = end - timedelta(days=40)
    record_drill(wh, [_drill("d-syd1", vm, passed, rto=r) for (_, vm), r in zip(syd.iterrows(), (300.0, 600.0, 900.0), strict=True)])
    record_drill(wh, [_drill("d-sin1", vm, end - timedelta(days=3), outcome="failed") for _, vm in sin.iterrows()])
    for platform in ("aws", "azure", "gcp", "vsphere"):  # a failed drill caps its site on every platform
        run_dr(wh, date.fromisoformat(day), platform, end)
    return wh, day, syd


def test_dr_page_shows_drills_decayed_credit_cap_and_the_failover_what_if(drilled_day):
    wh, day, syd = drilled_day
    at = open_page("dr")
    assert not at.exception
    drills = tables(at, "credit_now")[0].set_index("drill_id")
    assert drills.loc["d-syd1", "outcome"] == "passed" and drills.loc["d-syd1", "vms"] == 3
    assert drills.loc["d-syd1", "rto_median_seconds"] == 600.0 and drills.loc["d-sin1", "outcome"] == "failed"
    assert drills.loc["d-syd1", "credit_now"] == pytest.approx((180 - 40) / 150, abs=0.01)
    scores = tables(at, "readiness_score")[0]
    assert scores[scores["site"] == "sin1"]["capped"].all() and not scores[scores["site"] == "syd1"]["capped"].any()
    assert (scores[scores["site"] == "sin1"]["readiness_score"] <= 50).all()
    # The what-if opens on syd1: sin1-dr is the target; aws large (m6i.large has 2 vCPU: small) RTO from the drill.
    assert at.selectbox(key="sim-value").value == "syd1"
    assert not tables(at, "vcpu_needed")  # the simulation runs on request only
    at.toggle(key="sim-on").set_value(True).run()
    vm_dr = pq.read_table(wh.file("vm_dr", day, "aws")).to_pandas()
    capacity = tables(at, "vcpu_needed")[0]
    assert list(capacity["target"]) == ["sin1-dr"]
    rto = tables(at, "size_class")[0].set_index(["platform", "size_class"])
    assert rto.loc[("aws", "small"), "estimate_seconds"] == 600.0 and rto.loc[("aws", "small"), "drills"] == 1
    assert rto.loc[("aws", "small"), "method"].startswith("median RTO of 3 VM(s)")
    affected = int(sum(len(pq.read_table(wh.file("vm_dr", day, p), filters=[("site", "=", "syd1")]))
                       for p in ("aws", "azure", "gcp") if wh.exists("vm_dr", day, p)))
    assert [m.value for m in at.metric if m.label == "VMs affected"] == [f"{affected:,}"]
    assert set(syd["asset_id"]) <= set(vm_dr[vm_dr["last_drill_outcome"] == "passed"]["asset_id"])
    at.radio(key="sim-kind").set_value("region").run()
    at.selectbox(key="sim-value").set_value("us-east-1").run()
    assert not at.exception and list(tables(at, "vcpu_needed")[0]["target"]) == ["sfo1-dr"]
    assert "Failover what-if" in texts(at)
