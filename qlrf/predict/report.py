"""The predictive section of the fleet report (`qlrf report`): riskiest sites, drift forecasts that
cross their threshold, capacity warnings, reclaimable VMs and the cost estimate. Reads the day's
predict assets; a section whose asset is missing says which asset to materialise."""

from __future__ import annotations

from datetime import date

from qlrf.warehouse import Warehouse

TABLES = ("risk_sites", "drift_forecast", "capacity_recommendations", "reclaim_candidates", "cost_summary")


def _money(x: float | None) -> str:
    return "unknown" if x is None else f"${x:,.0f}"


def _saving(text: str | None) -> str:
    try:
        return _money(float(text))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "unknown"


def predict_text(wh: Warehouse, day: date | str, top: int = 5) -> str | None:
    """The section, or None when no predict asset exists for the day (older warehouses)."""
    present = {t for t in TABLES if wh.exists(t, day)}
    if not present:
        return None
    lines = ["", "Predictive (qlrf/predict; estimates and forecasts, see README 'Predictive features'):"]
    if "risk_sites" in present:
        lines.append("  Riskiest sites (risk 0-100, additive; top factors):")
        for r in wh.read("risk_sites", day).to_pylist()[:top]:
            lines.append(f"    {r['site']:<11} risk {r['risk_score']:>5.1f}  {r['critical_vms']:>5} critical  "
                         f"{r['high_vms']:>5} high  ({r['top_factors']})")
    if "drift_forecast" in present:
        rows = wh.read("drift_forecast", day).to_pylist()
        crossing = sorted((r for r in rows if r["crossing"].startswith("within")), key=lambda r: r["crosses_threshold_on"])
        above = sum(1 for r in rows if r["crossing"] == "above now")
        lines.append(f"  Drift forecasts: {len(rows)} site x environment x platform series; {above} above their "
                     f"threshold now; {len(crossing)} expected to cross within 30 days:")
        for r in crossing[:top]:
            lines.append(f"    {r['site']:<11} {r['environment']:<8} {r['platform']:<8} drift {r['drift_score']:>5.1f} -> "
                         f"{r['forecast_30d']:>5.1f} in 30 d (80% {r['lower_30d']}-{r['upper_30d']}), crosses "
                         f"{r['threshold']:g} on {r['crosses_threshold_on']}")
    if "capacity_recommendations" in present:
        recs = [r for r in wh.read("capacity_recommendations", day).to_pylist() if r["state"] not in ("within capacity", "fits at the target")]
        lines.append(f"  Capacity: {sum(1 for r in recs if r['kind'] == 'site_capacity')} limit(s) exceeded or "
                     "expected to be (policy/capacity.yaml):")
        for r in recs[:top * 2]:
            if r["kind"] == "site_capacity":
                lines.append(f"    {r['site']:<11} {r['platform']:<8} {r['resource']:<10} {r['used']:>9,.0f} of "
                             f"{r['capacity']:>9,.0f}: {r['state']}" + (f" (on {r['exceeds_on']})" if r["exceeds_on"] else ""))
            else:
                what = f" {r['resource']} {r['used']:,.0f} of {r['capacity']:,.0f}" if r["used"] is not None else ""
                lines.append(f"    {r['kind']}:{what} {r['state']} ({r['note']})")
    if "reclaim_candidates" in present:
        lines.append(f"  Reclaim: {wh.num_rows('reclaim_candidates', day)} VM(s) stopped for at least the configured days")
    if "cost_summary" in present:
        rows = wh.read("cost_summary", day).to_pylist()
        total = next((r for r in rows if r["dimension"] == "all"), None)
        meta = wh.run_metadata("cost_summary", day)
        if total:
            why = f"no price: {total['unknown_types']}" if total["unknown_types"] else "in a state other than running or stopped"
            unknown = f"; {total['unknown_cost_vms']} VM(s) of unknown cost ({why})" if total["unknown_cost_vms"] else ""
            lines.append(f"  Cost ESTIMATE: {_money(total['monthly_usd_estimate_known'])}/month for VMs with a known "
                         f"price{unknown}; right-sizing hints {_money(total['rightsizing_monthly_saving'])}/month; "
                         f"reclaiming {_saving(meta.get('reclaim_monthly_saving'))}/month")
            by_platform = [r for r in rows if r["dimension"] == "platform"]
            lines.append("    " + ", ".join(f"{r['key']} {_money(r['monthly_usd_estimate_known'])}" for r in by_platform))
    missing = [t for t in TABLES if t not in present]
    if missing:
        lines.append(f"  (not materialised for {day}: {', '.join(missing)})")
    return "\n".join(lines)
