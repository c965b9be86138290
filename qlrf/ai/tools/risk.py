"""get_risk: the risk scores (qlrf/predict/risk.py) of a scope, or one VM's score with its factors.

Reads risk_scores (per platform x site x environment) or, with `asset_id` or `top`, vm_risk rows
riskiest first; every row carries its top contributing factors so an answer can say why.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qlrf.ai.tools.context import ToolContext, select_day
from qlrf.ai.tools.fleet import Scope, _where
from qlrf.predict.risk import FACTORS

_SCOPE = ("platform", "site", "environment")
_LEVELS = {"low": 0, "medium": 1, "high": 2, "critical": 3}

_SCORES = f"""
SELECT platform, site, environment, vms, risk_score, max_risk_score, critical_vms, high_vms, top_factors FROM t
WHERE {_where(_SCOPE)} ORDER BY risk_score DESC, platform, site, environment
"""

_VMS = f"""
SELECT asset_id, platform, site, environment, owner, risk_score, risk_level, top_factor_1, top_factor_2, top_factor_3,
       drift_status, vulnerable_cves, cve_ids, failed_controls, dr_gap_reason, public_ip,
       {", ".join(f"{f}_points" for f in FACTORS)} FROM t
WHERE {_where(_SCOPE)} AND ($asset_id::VARCHAR IS NULL OR asset_id = $asset_id)
  AND (CASE risk_level WHEN 'low' THEN 0 WHEN 'medium' THEN 1 WHEN 'high' THEN 2 ELSE 3 END) >= $min_level
ORDER BY risk_score DESC, asset_id LIMIT $top
"""


class RiskQuery(Scope):
    asset_id: str | None = Field(None, description="one VM: its score, level and contributing factors")
    top: int | None = Field(None, ge=1, le=50, description="the N riskiest VMs in scope instead of the roll-up")
    min_level: Literal["low", "medium", "high", "critical"] = Field("low", description="VMs at or above this level")


def get_risk(ctx: ToolContext, q: RiskQuery) -> dict:
    params = q.model_dump(include=set(_SCOPE))
    method = "additive risk score 0-100 (policy/risk_weights.yaml); top_factors are the largest contributions"
    if q.asset_id is None and q.top is None:
        rows, facts = select_day(ctx, "risk_scores", q.day, _SCORES, params)
        return {"rows": rows, "facts": {**facts, "method": method}}
    rows, facts = select_day(ctx, "vm_risk", q.day, _VMS, {**params, "asset_id": q.asset_id,
                                                           "min_level": _LEVELS[q.min_level], "top": q.top or 1})
    return {"rows": rows, "matching": len(rows), "facts": {**facts, "method": method}}
