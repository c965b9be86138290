"""The offline router's answer text: one template per tool result, every number a cited tool value.

Why per tool rather than per agent: an agent's answer is the sum of what its tools returned (its plan
in ``plans.yaml``), so the same drift roll-up reads the same whether the drift, patch or incident
agent asked for it. Each template writes through :class:`Writer`, which records a
:class:`~qlrf.ai.answers.Citation` for every value it prints, in the grammar of
:mod:`qlrf.ai.router.grounding`; text with an uncited number cannot be written by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qlrf.ai.answers import Citation

HEADER = "Offline router (no model)"
DEFAULT_TOP = 3
MAX_TOP = 10

Call = tuple[str, Mapping[str, Any], Mapping[str, Any]]  # (tool, arguments, result)


@dataclass
class Writer:
    """Lines of an answer and the citations of the values in them."""

    lines: list[str] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)

    def v(self, tool: str, name: str, value: Any) -> str:
        """``value`` as written in the answer, cited as ``name`` of ``tool``."""
        self.citations.append(Citation(tool, name, value))
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:,.2f}".rstrip("0").rstrip(".") if not value.is_integer() else f"{int(value):,}"
        return str(value)

    def say(self, line: str) -> None:
        self.lines.append(line)


def _ok(calls: Sequence[Call], tool: str) -> list[Call]:
    return [c for c in calls if c[0] == tool and c[2].get("status") == "ok"]


def _rollups(calls: Sequence[Call], tool: str) -> list[Call]:
    return [c for c in _ok(calls, tool) if "asset_id" not in c[1]]


def _rows(calls: Sequence[Call]) -> list[dict]:
    return [row for _, _, result in calls for row in result.get("rows", [])]


def _where(row: Mapping[str, Any]) -> str:
    return "/".join(str(row[k]) for k in ("site", "environment", "platform") if row.get(k) is not None)


def _select(row: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={row[k]}" for k in ("platform", "site", "environment") if row.get(k) is not None)


def _scope(args: Mapping[str, Any]) -> str:
    parts = [str(args[k]) for k in ("site", "environment", "platform") if args.get(k)]
    return " ".join(parts) if parts else "the whole fleet"


def _top(count: int | None) -> int:
    return max(1, min(count or DEFAULT_TOP, MAX_TOP))


def _partial(w: Writer, calls: Sequence[Call], tool: str) -> None:
    for _, args, result in calls:
        cut = result.get("truncated")
        if cut:
            w.say(f"- note: {tool} for {_scope(args)} returned {w.v(tool, 'truncated.rows_returned', cut['rows_returned'])}"
                  f" of {w.v(tool, 'truncated.rows_total', cut['rows_total'])} rows; the figures above cover those only.")


def _vm_rows(calls: Sequence[Call], tool: str) -> list[Mapping[str, Any]]:
    """The row of each one-VM call (asked with an asset_id) of ``tool``."""
    return [result["rows"][0] for _, args, result in _ok(calls, tool) if "asset_id" in args and result.get("rows")]


def _total(w: Writer, t: str, rows: Sequence[Mapping[str, Any]], name: str) -> str:
    return w.v(t, f"sum(rows[].{name})", sum(r[name] or 0 for r in rows))


def _cell(w: Writer, t: str, row: Mapping[str, Any], name: str) -> str:
    return w.v(t, f"rows[{_select(row)}].{name}", row[name])


def _rollup(w: Writer, calls: Sequence[Call], t: str, scope: str, count: int | None, label: str,
            totals: Callable[[Sequence[Mapping[str, Any]]], str], order: str, descending: bool, worst_label: str,
            row_text: Callable[[Mapping[str, Any]], str]) -> None:
    """A roll-up (per platform x site x environment, over every call): totals, then the worst rows."""
    rollups = _rollups(calls, t)
    if not rollups:
        return
    rows = _rows(rollups)
    if not rows:
        w.say(f"- {label}: no VMs in {scope}.")
        return
    w.say(f"- {label} in {scope}: {totals(rows)}.")
    sign = -1 if descending else 1
    worst = sorted(rows, key=lambda r: (sign * r[order], _where(r)))[: _top(count)]
    w.say(f"- {worst_label}: " + "; ".join(f"{_where(r)} {row_text(r)}" for r in worst) + ".")
    _partial(w, rollups, t)


def drift(w: Writer, calls: Sequence[Call], scope: str, count: int | None) -> None:
    t = "get_drift_status"
    for r in _vm_rows(calls, t):
        w.say(f"- VM {w.v(t, 'rows[0].asset_id', r['asset_id'])} ({_where(r)}): image "
              f"{w.v(t, 'rows[0].family', r.get('family') or 'unknown family')} "
              f"{w.v(t, 'rows[0].image_version', r.get('image_version') or 'unknown version')}, status "
              f"{w.v(t, 'rows[0].status', r['status'])}"
              + (f", {w.v(t, 'rows[0].versions_behind', r['versions_behind'])} versions behind"
                 if r.get("versions_behind") is not None else "")
              + (f", revoked ({w.v(t, 'rows[0].revoked_reason', r['revoked_reason'])})" if r.get("revoked_reason") else "")
              + ".")
    _rollup(w, calls, t, scope, count, "Drift",
            lambda rows: (f"{_total(w, t, rows, 'vms')} VMs, {_total(w, t, rows, 'on_current')} on the current golden "
                          f"image, {_total(w, t, rows, 'revoked')} on revoked images, "
                          f"{_total(w, t, rows, 'unmanaged_or_unknown')} on unmanaged or unknown images"),
            "drift_score", True, "Most drifted",
            lambda r: (f"drift {_cell(w, t, r, 'drift_score')}, {_cell(w, t, r, 'revoked')} on revoked images of "
                       f"{_cell(w, t, r, 'vms')}"))


def compliance(w: Writer, calls: Sequence[Call], scope: str, count: int | None) -> None:
    t = "check_compliance"
    for r in _vm_rows(calls, t):
        failed = list(r.get("failed_controls") or [])
        w.say(f"- VM {w.v(t, 'rows[0].asset_id', r['asset_id'])}: "
              f"{w.v(t, 'len(rows[0].failed_controls)', len(failed))} failed controls"
              + (f" ({', '.join(w.v(t, f'rows[0].failed_controls[{i}]', c) for i, c in enumerate(failed))})" if failed else "")
              + f", {w.v(t, 'len(rows[0].waived_controls)', len(r.get('waived_controls') or []))} waived.")
    _rollup(w, calls, t, scope, count, "Compliance",
            lambda rows: (f"{_total(w, t, rows, 'non_compliant_vms')} of {_total(w, t, rows, 'vms')} VMs fail at least "
                          f"one control ({_total(w, t, rows, 'failures')} control failures, "
                          f"{_total(w, t, rows, 'waived')} waived)"),
            "compliance_score", False, "Lowest scores",
            lambda r: (f"{_cell(w, t, r, 'compliance_score')}% ({_cell(w, t, r, 'non_compliant_vms')} "
                       "non-compliant VMs)"))


def dr(w: Writer, calls: Sequence[Call], scope: str, count: int | None) -> None:
    t = "get_dr_status"
    for r in _vm_rows(calls, t):
        w.say(f"- VM {w.v(t, 'rows[0].asset_id', r['asset_id'])}: DR-ready {w.v(t, 'rows[0].ready', bool(r['ready']))}"
              + (f", gap: {w.v(t, 'rows[0].gap', r['gap'])}" if r.get("gap") else "")
              + (f", restore point {w.v(t, 'rows[0].snapshot_age_hours', r['snapshot_age_hours'])} h old against an RPO "
                 f"of {w.v(t, 'rows[0].rpo_hours', r['rpo_hours'])} h" if r.get("snapshot_age_hours") is not None else "")
              + ".")
    _rollup(w, calls, t, scope, count, "DR readiness",
            lambda rows: (f"{_total(w, t, rows, 'ready_vms')} of {_total(w, t, rows, 'vms')} VMs are DR-ready; "
                          f"{_total(w, t, rows, 'rpo_breaches')} breach their RPO"),
            "dr_readiness", False, "Least ready",
            lambda r: f"{_cell(w, t, r, 'dr_readiness')}% ready ({_cell(w, t, r, 'rpo_breaches')} RPO breaches)")


def failover(w: Writer, calls: Sequence[Call], scope: str, count: int | None) -> None:
    t = "simulate_failover"
    for _, _, result in _ok(calls, t):
        if not result.get("simulated"):
            readiness = result["readiness"]
            w.say(f"- Failover of {scope}: {w.v(t, 'answer', result['answer'])}. Missing: "
                  + "; ".join(f"{w.v(t, f'missing[{i}].what', m['what'])} ({w.v(t, f'missing[{i}].why', m['why'])})"
                            for i, m in enumerate(result["missing"])) + ".")
            w.say(f"- What is known: {w.v(t, 'readiness.dr_ready', readiness['dr_ready'])} of "
                  f"{w.v(t, 'readiness.vms', readiness['vms'])} VMs in scope are DR-ready"
                  + ("; gaps: " + "; ".join(f"{gap} {w.v(t, f'readiness.gaps.{gap}', n)}" for gap, n in readiness["gaps"].items())
                     if readiness["gaps"] else "") + ".")
            continue
        w.say(f"- Failover of {scope}: {w.v(t, 'affected_vms', result['affected_vms'])} VMs in "
              f"{w.v(t, 'affected_groups', result['affected_groups'])} groups affected; "
              f"{w.v(t, 'groups_breached', result['groups_breached'])} groups would breach their objectives.")
        for i, c in enumerate(result["capacity"]):
            w.say(f"- Capacity at {w.v(t, f'capacity[{i}].target', c['target'])}: "
                  f"{w.v(t, f'capacity[{i}].vcpu_needed', c['vcpu_needed'])} vCPU needed of "
                  f"{w.v(t, f'capacity[{i}].vcpu_available', c['vcpu_available'])} available"
                  f" ({'fits' if c['fits'] else 'short'}).")
        w.say(f"- RTO: measured for {w.v(t, 'rto_measured_classes', result['rto_measured_classes'])} of "
              f"{w.v(t, 'len(rto)', len(result['rto']))} platform x size classes (passed drills only); "
              f"RPO: {w.v(t, 'rpo.vms_over_objective', result['rpo']['vms_over_objective'])} VMs over their RPO, "
              f"{w.v(t, 'rpo.vms_without_restore_point', result['rpo']['vms_without_restore_point'])} without a restore point.")


def cost(w: Writer, calls: Sequence[Call], scope: str, count: int | None) -> None:
    t = "estimate_cost"
    for _, _, result in _ok(calls, t):
        w.say(f"- Cost of {scope} ({result['facts']['state']} VMs, list prices): "
              f"{w.v(t, 'vms', result['vms'])} VMs, USD {w.v(t, 'monthly_usd', result['monthly_usd'])} a month "
              f"(USD {w.v(t, 'hourly_usd', result['hourly_usd'])} an hour).")
        top = sorted(result.get("rows", []), key=lambda r: (-r["monthly_usd"], r["platform"], str(r["instance_type"])))
        if top:
            w.say("- Largest lines: " + "; ".join(_cost_line(w, t, r) for r in top[: _top(count)]) + ".")
        if result.get("unknown_instance_types"):
            w.say(f"- {w.v(t, 'len(unknown_instance_types)', len(result['unknown_instance_types']))} instance types are "
                  "not in the price table and are priced at the platform default.")


def _cost_line(w: Writer, t: str, r: Mapping[str, Any]) -> str:
    row = f"rows[platform={r['platform']},instance_type={r['instance_type']}]"
    return (f"{r['platform']} {r['instance_type']} x{w.v(t, row + '.vms', r['vms'])} "
            f"USD {w.v(t, row + '.monthly_usd', r['monthly_usd'])}/month")


def assets(w: Writer, calls: Sequence[Call], scope: str, count: int | None) -> None:
    t = "query_assets"
    for _, args, result in _ok(calls, t):
        what = " ".join(str(args[k]) for k in ("state", "image_family") if args.get(k)) or "matching"
        what = "on revoked images:" if args.get("status") == "revoked" else what
        shown = [w.v(t, f"[{_args_key(args)}] rows[{i}].asset_id", r["asset_id"]) for i, r in enumerate(result["rows"])]
        if args.get("status") == "revoked":
            w.say(f"- VMs in {_scope(args)} on revoked images: {w.v(t, f'[{_args_key(args)}] matching', result['matching'])}"
                  + (f"; first by id: {', '.join(shown)}" if shown else "") + ".")  # no uncited count
            continue
        w.say(f"- {w.v(t, f'[{_args_key(args)}] matching', result['matching'])} {what} VMs in {_scope(args)}"
              + (f", e.g. {', '.join(shown)}" if shown else "") + ".")


def _args_key(args: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(args.items()) if k in ("image_family", "state", "site", "status"))


def _listed(head: str, items: list[str], lead: str = ": ") -> str:
    """``head``, then the items after ``lead`` when there are any, as one sentence."""
    return head + (lead + "; ".join(items) if items else "") + "."


def pending(w: Writer, calls: Sequence[Call], scope: str, count: int | None) -> None:
    t = "list_pending_tasks"
    for _, args, result in _ok(calls, t):
        where = f" in {args['environment']}" if args.get("environment") else ""
        items = [f"{w.v(t, f'rows[{i}].id', r['id'])} ({_where(r)}, risk {r['risk_level']})"
                 for i, r in enumerate(result["rows"][: _top(count)])]
        w.say(_listed(f"- Pending approval{where}: {w.v(t, 'pending', result['pending'])} tasks", items))


def alerts(w: Writer, calls: Sequence[Call], scope: str, count: int | None) -> None:
    t = "query_alerts"
    for _, _, result in _ok(calls, t):
        items = [f"{w.v(t, f'rows[{i}].key', r['key'])} via {w.v(t, f'rows[{i}].channel', r['channel'])}"
                 for i, r in enumerate(result["rows"][: _top(count)])]
        w.say(_listed("- Alerts delivered (the ledger keeps the last per key and channel): "
                      f"{w.v(t, 'matching', result['matching'])}", items, ", newest: "))


def audit(w: Writer, calls: Sequence[Call], scope: str, count: int | None) -> None:
    t = "query_audit"
    for _, _, result in _ok(calls, t):
        rows = result["rows"][: _top(count)]
        w.say("- Latest audit records: " + ("; ".join(
            f"{w.v(t, f'rows[{i}].kind', r['kind'])} on {w.v(t, f'rows[{i}].subject', r['subject'])}"
            for i, r in enumerate(rows)) if rows else "none") + ".")


def images(w: Writer, calls: Sequence[Call], scope: str, count: int | None) -> None:
    t = "get_golden_image"
    for _, args, result in _ok(calls, t):
        f = f"[family={args['family']}] "
        channels = ", ".join(f"{ch} {w.v(t, f'{f}channels.{ch}', v)}" for ch, v in result["channels"].items() if v)
        revoked = result["revocations"]
        w.say(f"- {w.v(t, f'{f}arguments.family', args['family'])}: {w.v(t, f'{f}len(rows)', len(result['rows']))} "
              "versions; current per channel: "
              f"{channels or 'none'}; revoked: "
              + ("; ".join(f"{w.v(t, f'{f}revocations[{i}].version', r['version'])} "
                           f"({w.v(t, f'{f}revocations[{i}].reason', r['reason'])})" for i, r in enumerate(revoked))
                 if revoked else "none") + ".")


def sbom(w: Writer, calls: Sequence[Call], scope: str, count: int | None) -> None:
    t = "sbom_query"
    for _, args, result in _ok(calls, t):
        hits = result["images"]
        w.say(f"- {w.v(t, 'arguments.package', args['package'])}: {w.v(t, 'len(images)', len(hits))} golden image "
              "versions ship it"
              + (" (" + ", ".join(f"{w.v(t, f'images[{i}].family', h['family'])} {w.v(t, f'images[{i}].version', h['version'])}"
                                  for i, h in enumerate(hits[:MAX_TOP])) + (", ..." if len(hits) > MAX_TOP else "") + ")"
                 if hits else "")
              + f"; {w.v(t, 'vms_affected', result['vms_affected'])} VMs run those images.")


TEMPLATES: dict[str, Callable[[Writer, Sequence[Call], str, int | None], None]] = {
    "get_drift_status": drift, "check_compliance": compliance, "get_dr_status": dr, "simulate_failover": failover,
    "estimate_cost": cost, "query_assets": assets, "list_pending_tasks": pending, "query_alerts": alerts,
    "query_audit": audit, "get_golden_image": images, "sbom_query": sbom,
}


def errors(w: Writer, calls: Sequence[Call]) -> None:
    """Tool failures said plainly: which tool, for what, and the error it gave."""
    for tool, args, result in calls:
        if result.get("status") != "ok":
            w.say(f"- {tool} ({_scope(args)}) could not answer: {result.get('error', 'no reason given')}.")
