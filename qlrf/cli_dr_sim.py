"""`qlrf dr simulate` and `qlrf dr history`: the failover what-if and the drill journal, from the warehouse.

Two functions add the commands to the `dr` group (``add_simulate(dr_sub)``, ``add_history(dr_sub)``),
so the group itself can be shared with the drill commands (`qlrf dr plan|drill`). Nothing here calls
a cloud; everything reads QLRF_WAREHOUSE, the DR target map (QLRF_DR_TARGETS or
policy/dr_targets.yaml) and the instance-type sizes.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime

from qlrf.dates import argparse_iso_day
from qlrf.platforms import PLATFORMS

TOP_GROUPS = 15


def _warehouse():
    from qlrf.settings import Settings
    from qlrf.warehouse import Warehouse

    return Warehouse(Settings.from_env().warehouse)


def _hours(seconds: float | None) -> str:
    if seconds is None:
        return "unmeasured"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def render_simulation(result: dict, top: int = TOP_GROUPS) -> str:
    """The simulation as text: scope, capacity per target, RTO per class, RPO exposure, group verdicts."""
    from qlrf.textable import table_lines

    s = result["scenario"]
    lines = [f"Failover simulation: lose {s['kind']} {s['value']}" + (f" ({s['environment']} only)" if s["environment"] else "")
             + f" on {result['day']} (as of {result['as_of']})",
             f"{result['affected_vms']} VMs affected ({result['affected_running_vms']} running) in "
             f"{result['affected_groups']} groups: {result['groups_met']} meet their objectives, "
             f"{result['groups_breached']} breached", ""]
    if not result["affected_vms"]:
        lines.append(f"Nothing in the warehouse matches {s['kind']} {s['value']!r} on {result['day']}.")
        return "\n".join(lines)
    lines.append("Capacity at the recovery targets (running VMs):")
    lines += ["  " + line for line in table_lines(
        ("TARGET", "VMS", "VCPU NEEDED", "VCPU FREE", "MEM GIB NEEDED", "MEM GIB FREE", "FITS", "NOTE"),
        [(c["target"], c["running_vms"], c["vcpu_needed"], c["vcpu_available"], c["memory_gib_needed"],
          c["memory_gib_available"], "yes" if c["fits"] else "NO",
          c["note"] or (f"{c['unknown_size_vms']} VMs of unknown size: {', '.join(c['unknown_types'])}"
                        if c["unknown_size_vms"] else "")) for c in result["capacity"]], right=(1, 2, 3, 4, 5))]
    lines += ["", "Estimated RTO per platform and size class (from measured drills):"]
    lines += ["  " + line for line in table_lines(
        ("PLATFORM", "SIZE", "VMS", "RTO", "HOW"),
        [(r["platform"], r["size_class"], r["vms"], _hours(r["estimate_seconds"]), r["method"]) for r in result["rto"]],
        right=(2,))]
    rpo = result["rpo"]
    lines += ["", f"Data at risk (newest restore point's age at the end of the day): {rpo['vms_over_objective']} VMs over their RPO, "
              f"{rpo['vms_without_restore_point']} with no restore point, worst {rpo['max_exposure_hours']} h"]
    lines += ["  " + line for line in table_lines(
        ("ENVIRONMENT", "RPO H", "VMS", "OVER RPO", "NO RESTORE POINT", "MEDIAN H", "P95 H", "MAX H"),
        [(r["environment"], r["rpo_objective_hours"], r["vms"], r["over_objective"], r["no_restore_point"],
          r["median_exposure_hours"], r["p95_exposure_hours"], r["max_exposure_hours"]) for r in rpo["by_environment"]],
        right=(1, 2, 3, 4, 5, 6, 7))]
    breached = [g for g in result["verdict"] if g["verdict"] == "breached"]
    shown = sorted(breached, key=lambda g: (-g["vms"], g["group"]))[:top]
    lines += ["", f"Groups breached ({len(breached)}; largest {len(shown)} shown, --json for all):" if breached
              else "Every affected group meets its objectives."]
    if shown:
        lines += ["  " + line for line in table_lines(
            ("GROUP", "VMS", "TARGETS", "WHY"),
            [(g["group"], g["vms"], ",".join(g["targets"]),
              "; ".join(f"{r['why']} ({r['vms']})" for r in g["reasons"])) for g in shown], right=(1,))]
    return "\n".join(lines)


def cmd_dr_simulate(args: argparse.Namespace) -> int:
    from qlrf.dr.simulation import simulate
    from qlrf.dr.targets import configured_targets
    from qlrf.inventory.instance_types import default_instance_types

    targets = configured_targets(args.targets)
    kind, value = next((k, getattr(args, k)) for k in ("site", "region", "platform") if getattr(args, k))
    scenario = targets.scenario(kind, value, args.environment)
    result = simulate(_warehouse(), scenario, targets, default_instance_types(),
                      args.date.isoformat() if args.date else None).as_dict()
    print(json.dumps(result, default=str) if args.json else render_simulation(result))
    return 0


def render_history(rows: list[dict], as_of: date, days: int) -> str:
    from qlrf.textable import table_lines

    if not rows:
        return (f"No drill recorded in the {days} days up to {as_of}: readiness gives no drill credit "
                "(gap: no drill in 180 days). Run one with `qlrf dr drill PLAN`.")
    body = table_lines(
        ("STARTED", "DRILL", "PLATFORM", "SITE", "ENV", "VMS", "OUTCOME", "RTO MEDIAN/MAX", "RTO OBJ", "RPO MAX", "RPO OBJ",
         "CREDIT", "WHY"),
        [(r["started_at"].strftime("%Y-%m-%dT%H:%MZ"), r["drill_id"], r["platform"], r["site"], r["environment"], r["vms"],
          r["outcome"], f"{_hours(r['rto_median_seconds'])}/{_hours(r['rto_max_seconds'])}", _hours(r["rto_objective_seconds"]),
          _hours(r["rpo_achieved_max_seconds"]), _hours(r["rpo_objective_seconds"]), f"{r['credit_now']:.2f}",
          r["reasons"] or "") for r in rows], right=(5,))
    return "\n".join([*body, f"{len(rows)} drill(s) in the {days} days up to {as_of}; CREDIT is what a drill still "
                      "earns for readiness (full for 30 days, 0 at 180)"])


def cmd_dr_history(args: argparse.Namespace) -> int:
    from qlrf.dr.history import drill_summary
    from qlrf.inventory.contract import json_default

    as_of = args.date or datetime.now(UTC).date()
    rows = drill_summary(_warehouse(), as_of, args.days, args.site, args.platform).to_pylist()
    if args.json:
        print(json.dumps(rows, default=json_default))
    else:
        print(render_history(rows, as_of, args.days))
    return 0


def _days(value: str) -> int:
    n = int(value)
    if not 1 <= n <= 3650:
        raise argparse.ArgumentTypeError(f"--days must be 1-3650, got {value}")
    return n


def add_simulate(dr_sub) -> None:
    p = dr_sub.add_parser("simulate", help="what-if: lose a site, region or platform; capacity, RTO, RPO and a verdict per group")
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--site", help="lose this site (e.g. syd1)")
    scope.add_argument("--region", help="lose this region (e.g. us-east-1, dc-lon1)")
    scope.add_argument("--platform", choices=PLATFORMS, help="lose this platform")
    p.add_argument("--environment", help="only this environment's VMs (prod, staging, dev)")
    p.add_argument("--date", type=argparse_iso_day, help="YYYY-MM-DD (default: the newest day with vm_dr)")
    p.add_argument("--targets", help="DR target map YAML (default: QLRF_DR_TARGETS or policy/dr_targets.yaml)")
    p.add_argument("--json", action="store_true", help="one JSON object: affected_vms, affected_groups, capacity, rto, rpo, verdict")
    p.set_defaults(func=cmd_dr_simulate)


def add_history(dr_sub) -> None:
    p = dr_sub.add_parser("history", help="recorded drills, newest first: outcome, RTO/RPO against objectives, credit left")
    p.add_argument("--site")
    p.add_argument("--platform", choices=PLATFORMS)
    p.add_argument("--days", type=_days, default=180, help="look back this many days (default 180)")
    p.add_argument("--date", type=argparse_iso_day, help="YYYY-MM-DD the credit is computed at (default: today, UTC)")
    p.add_argument("--json", action="store_true", help="one JSON list, one object per drill")
    p.set_defaults(func=cmd_dr_history)


__all__ = ["add_history", "add_simulate", "render_history", "render_simulation"]


