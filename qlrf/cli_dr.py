"""`qlrf dr ...`: disaster-recovery drills outside Dagster.

    qlrf dr plan show FILE [--json]      the plan as a human reads it, with its content hash
    qlrf dr plan validate FILE           exit 0 if valid; 2 naming the field (or the hash) if not
    qlrf dr drill FILE [--dry-run] [--yes] [--date D] [--json]
                                         run the drill (gate, approval, steps, cleanup, journal) with
                                         progress; --dry-run lists what would be created
    qlrf dr cleanup FILE                 remove every tagged leftover of earlier drills in the plan's target

One function per subcommand, so other `dr` subcommands (simulate, history) are added beside these
without touching them. Identity is the trusted local mode's (the OS account), never typed.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime

from qlrf.settings import Settings


def _actor() -> str:
    import getpass

    return f"cli:{getpass.getuser()}"


def _gate():
    from qlrf.dr.authorise import DR_DECISION_PATH
    from qlrf.remediation.gate import Gate

    return Gate.from_env(decision_path=DR_DECISION_PATH)


def plan_summary(plan) -> str:
    from qlrf.dr.plans import STEP_MEANING

    m, s = plan.metadata, plan.spec
    scope = [f"site={s.scope.site}" if s.scope.site else "", f"group={s.scope.group}" if s.scope.group else "",
             f"vms={','.join(s.scope.vms)}" if s.scope.vms else "",
             " ".join(f"{k}={v}" for k, v in s.scope.selector.items())]
    target = " ".join(f"{k}={v}" for k, v in s.target.model_dump(exclude_none=True).items())
    lines = [f"drill plan  {m.id} ({plan.plan_hash})",
             f"platform    {m.platform}  environment {m.environment}  site {m.site or '-'}  risk {m.risk_level}  "
             f"autonomy {m.autonomy_mode}",
             f"reason      {m.reason} (by {m.created_by}, {m.created_at.isoformat()})",
             f"scope       {' '.join(x for x in scope if x)} (at most {s.scope.max_vms} VMs)",
             f"target      {target}",
             f"restore     newest {s.restore_from.kind}" + (f" {s.restore_from.template}" if s.restore_from.template else ""),
             f"before      {', '.join(c.check + (f'<={c.max_seconds}s' if c.max_seconds else '') for c in s.steady_state.before) or '-'}",
             f"after       {', '.join(c.check for c in s.steady_state.after) or '-'}",
             f"objectives  RTO {s.objectives.rto_seconds}s  RPO {s.objectives.rpo_seconds}s",
             f"cleanup     {s.cleanup}"]
    lines += [f"step        {st.name:<10} timeout {st.timeout_seconds:>6}s  {STEP_MEANING[st.name]}" for st in s.steps]
    return "\n".join(lines)


def task_summary(task) -> str:
    """A ``dr_drill`` approval task's plan as `qlrf approvals show` prints it (its hash checked)."""
    import yaml

    from qlrf.dr.plans import parse_drill_plan

    plan = parse_drill_plan(yaml.safe_dump(task.spec_document()), f"task {task.id}")
    return plan_summary(plan) + "\nrun it     qlrf dr drill <the plan file> --yes  (once approved; the approval is used once)"


def cmd_plan_show(args: argparse.Namespace) -> int:
    from qlrf.dr.plans import load_drill_plan

    plan = load_drill_plan(args.file)
    if args.json:
        print(json.dumps({**plan.model_dump(mode="json"), "content_hash": plan.plan_hash}, indent=2))
    else:
        print(plan_summary(plan))
    return 0


def cmd_plan_validate(args: argparse.Namespace) -> int:
    from qlrf.dr.plans import load_drill_plan

    plan = load_drill_plan(args.file)  # DrillPlanError (a ValueError) -> exit 2 naming the field or hash
    print(f"ok: {args.file} is a valid drill plan ({plan.metadata.id}, {plan.plan_hash})")
    return 0


def cmd_drill(args: argparse.Namespace) -> int:
    from qlrf.dr.drivers import drill_driver_for
    from qlrf.dr.plans import STEP_NAMES, load_drill_plan
    from qlrf.dr.service import DrillRefused, dry_run, run_drill
    from qlrf.events.outbox import Outbox
    from qlrf.events.wiring import evented_store
    from qlrf.progress import Progress
    from qlrf.remediation.audit import AuditLog
    from qlrf.warehouse import Warehouse

    plan = load_drill_plan(args.file)
    requested_by = _drill_caller(args, plan)
    as_of = args.date or datetime.now(UTC).date()
    wh = Warehouse(Settings.from_env().warehouse)
    driver = drill_driver_for(plan.metadata.platform)
    gate = _gate()
    try:
        if args.dry_run:
            result = dry_run(plan, warehouse=wh, driver=driver, gate=gate, requested_by=requested_by, as_of=as_of)
            print("\n".join(result.lines()))
            return 1 if result.problems else 0
        if not args.yes:
            if not sys.stdin.isatty():
                print("error: a drill creates resources in the DR target: confirm with --yes (or run it in a terminal)",
                      file=sys.stderr)
                return 2
            answer = input(f"run drill {plan.metadata.id} ({plan.plan_hash[:19]}...) into {plan.spec.target.region}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("not run")
                return 1
        audit = AuditLog()
        with Progress(len(STEP_NAMES), f"drill {plan.metadata.id}") as bar:
            def on_step(step: str, active: int) -> None:
                bar.advance()
                bar.doing(f"{step} done, {active} VM(s) still in the drill")

            def log(message: str) -> None:
                bar.doing(message)
                print(f"{datetime.now(UTC):%H:%M:%S} {message}", file=sys.stderr, flush=True)

            try:
                result = run_drill(plan, warehouse=wh, driver=driver, gate=gate, store=evented_store(audit=audit), audit=audit,
                                   requested_by=requested_by, as_of=as_of, log=log, on_step=on_step, outbox=Outbox())
            except DrillRefused as exc:
                print(f"not run: {exc}", file=sys.stderr)
                return 3
    finally:
        gate.close()
        driver.close()
    if args.json:
        print(json.dumps({**result.summary(), "rows": [_row(r) for r in result.rows]}, default=str))
    else:
        print("\n".join(result.lines()))
    return 0 if result.outcome == "passed" else 1


def _drill_caller(args: argparse.Namespace, plan) -> str:
    """The caller, allowed to drill in the plan's organisation: an operator for dev and staging, an
    approver for production (``drill_production``). The organisation is the plan's, never typed."""
    from qlrf.cli import acting
    from qlrf.tenancy.enforce import document_org

    action = "drill_production" if plan.metadata.environment == "prod" else "drill"
    if args.dry_run:  # lists what would be created, creates nothing: reading is enough
        action = "read"
    return acting(args.as_user, action, document_org(plan.model_dump(mode="json"))).name


def _row(row: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}


def cmd_cleanup(args: argparse.Namespace) -> int:
    from qlrf.dr.drivers import drill_driver_for
    from qlrf.dr.plans import load_drill_plan
    from qlrf.dr.runner import DrillRunner
    from qlrf.remediation.audit import AuditLog
    from qlrf.warehouse import Warehouse

    plan = load_drill_plan(args.file)
    driver = drill_driver_for(plan.metadata.platform)
    try:
        runner = DrillRunner(driver, audit=AuditLog(), warehouse=Warehouse(Settings.from_env().warehouse), actor=_actor())
        removed = runner.sweep(plan)
    finally:
        driver.close()
    for entry in removed:
        print(f"{'removed' if entry.get('removed') else 'FAILED '} {entry['kind']:<9} {entry['id']:<28} drill {entry['drill_id']}"
              + (f"  {entry['error']}" if entry.get("error") else ""))
    failed = sum(1 for e in removed if not e.get("removed"))
    print(f"{len(removed) - failed} leftover resource(s) removed from {plan.spec.target.region}"
          + (f", {failed} could not be removed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def register(sub, day=date.fromisoformat):
    """Add the `dr` command group to the `qlrf` parser's subparsers; returns its subparsers (simulate and
    history are added by qlrf.cli_dr_sim)."""
    dr = sub.add_parser("dr", help="disaster recovery: drill plans, drills, cleanup, failover simulation, drill history").add_subparsers(
        dest="dr_command", required=True)
    plan = dr.add_parser("plan", help="drill plans (YAML contracts)").add_subparsers(dest="dr_plan_command", required=True)
    show = plan.add_parser("show", help="human summary: scope, target, steps with timeouts, objectives, hash")
    show.add_argument("file")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_plan_show)
    validate = plan.add_parser("validate", help="exit 0 if valid, 2 naming the field (or the hash) if not")
    validate.add_argument("file")
    validate.set_defaults(func=cmd_plan_validate)
    drill = dr.add_parser("drill", help="run a drill (Rego gate, approval, steps, measured RTO/RPO, cleanup, journal)")
    drill.add_argument("file")
    drill.add_argument("--dry-run", action="store_true", help="list exactly what would be created; create nothing")
    drill.add_argument("--yes", action="store_true", help="do not ask for confirmation (the gate and approvals still apply)")
    drill.add_argument("--date", type=day, help="the inventory day to resolve the scope on (default: today)")
    drill.add_argument("--json", action="store_true")
    drill.add_argument("--as", dest="as_user", metavar="USER",
                       help="drill as this user (only in trusted local mode, QLRF_CLI_TRUSTED_LOCAL_USER)")
    drill.set_defaults(func=cmd_drill)
    clean = dr.add_parser("cleanup", help="remove every tagged leftover of earlier drills in the plan's target (run it when no drill is running there)")
    clean.add_argument("file")
    clean.set_defaults(func=cmd_cleanup)
    return dr


__all__ = ["register"]
