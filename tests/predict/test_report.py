"""The daily predict stages without Dagster on the small day, and the report section they feed."""

from __future__ import annotations

from qlrf.inventory.instance_types import default_instance_types
from qlrf.predict import capacity, cost, risk, stages
from qlrf.predict.report import predict_text
from qlrf.scoring.compliance import load_catalogue
from qlrf.warehouse import Warehouse
from tests.predict.support import DAY, predict_day


def test_daily_stages_and_the_report_section(tmp_path):
    wh = Warehouse(str(tmp_path))
    predict_day(wh)
    assert predict_text(wh, DAY) is None  # nothing predicted yet: no section, no error
    prices, types = cost.load_price_table(), default_instance_types()
    stages.run_risk(wh, DAY, "aws", risk.load_weights(), risk.load_cves(), risk.control_severities(load_catalogue()))
    stages.run_cost(wh, DAY, "aws", prices, types)
    sites = stages.run_risk_sites(wh, DAY)
    assert sites["site"].to_pylist()[0] == "lon1"  # the revoked, exposed VM lives there
    policy = capacity.load_capacity()
    plan, recs, reclaim = stages.run_capacity(wh, DAY, policy, types)
    assert plan.num_rows == 2 and reclaim.num_rows == 0  # one day of history: nothing stopped for long
    summary, notes = stages.run_cost_summary(wh, DAY, prices, policy)
    assert notes["reclaim_monthly_saving"] == "0.00" and "ESTIMATE" in notes["estimate"]
    forecasts = stages.run_forecast(wh, DAY, {"prod": 30, "dev": 60})
    assert forecasts.num_rows == 3 and set(forecasts["crossing"].to_pylist()) <= {"above now", "not within 30 days"}
    text = predict_text(wh, DAY)
    assert "lon1" in text.split("Riskiest sites")[1].splitlines()[1]
    assert "Cost ESTIMATE" in text and "1 VM(s) of unknown cost (no price: x9.mystery)" in text
    assert "Drift forecasts: 3 site x environment x platform series" in text
