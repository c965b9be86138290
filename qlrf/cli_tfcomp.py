"""CLI for Terraform-managed estates and compliance remediation (issue 12 items 4 and 6).

    qlrf plan terraform TASK_ID [--repo DIR] [--out FILE] [--branch NAME]   the Terraform code change
    qlrf plan evidence TASK_ID PLAN.json [--actor WHO]                      check + record a plan file
    qlrf plan compliance [--date D] [--site S]                             plan a day's compliance fixes
    qlrf approvals approve TASK_ID --hash H --evidence-hash E ...           (Terraform-managed tasks)

Registered into the existing ``plan`` and ``approvals`` groups by :func:`register`.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any


def _group(sub: Any, name: str) -> Any:
    """The subcommand action of the existing top-level group `name` (``plan``, ``approvals``)."""
    parser = sub.choices[name]
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001


def plan_kind_lines(spec: Any) -> list[str]:
    """Lines for `qlrf plan show` / `approvals show`: the compliance fix or the Terraform delivery."""
    lines = []
    if spec.compliance is not None:
        c = spec.compliance
        lines.append(f"compliance  {c.type} (fixes {', '.join(c.controls)})")
        for change in c.tags[:20]:
            lines.append(f"  tags      {change.asset_id}: " + ", ".join(
                f"{k}={v} ({change.derived_from.get(k, '-')})" for k, v in sorted(change.tags.items())))
        for asset, why in list(c.held.items())[:20]:
            lines.append(f"  held      {asset}: {why}")
    if spec.terraform is not None:
        t = spec.terraform
        locator = f"pointer {t.json_pointer}" if t.json_pointer else f"variable {t.hcl_variable}"
        lines.append(f"terraform   {t.source}: {t.repo} {t.path_glob} ({locator}); resources {', '.join(t.expected_resources)}")
        lines.append("            approval needs the sha256 of the checked plan file (`qlrf plan evidence`)")
    return lines


def _store() -> Any:
    from qlrf.cli import _task_store

    return _task_store()


def cmd_plan_terraform(args: argparse.Namespace) -> int:
    from qlrf.remediation.terraform import commit_branch, make_patch, write_patch

    task = _store().get(args.task_id)
    plan = task.plan()
    patch = make_patch(plan, args.repo)  # TerraformError (ValueError) -> exit 2, nothing written
    if args.out:
        write_patch(patch, args.out)
        print(f"wrote {args.out}: {len(patch.changes)} file(s) pin {patch.image}", file=sys.stderr)
    else:
        sys.stdout.write(patch.diff())
    if args.branch:
        commit = commit_branch(patch, args.branch, f"{plan.metadata.id}: pin {patch.image} ({task.id}, {task.plan_hash})")
        print(f"branch {args.branch} in {patch.repo}: commit {commit}", file=sys.stderr)
    return 0


def cmd_plan_evidence(args: argparse.Namespace) -> int:
    from qlrf.cli import _cli_actor
    from qlrf.remediation.tf_evidence import evidence_gate, record_evidence

    evidence = record_evidence(_store(), args.task_id, args.plan_file, evidence_gate(), actor=args.actor or _cli_actor())
    if not evidence.allow:
        print(f"refused: {args.plan_file} ({evidence.sha256}) does not match the patch:", file=sys.stderr)
        for reason in evidence.reasons:
            print(f"  - {reason}", file=sys.stderr)
        return 1
    print(f"accepted: {args.plan_file} {evidence.sha256} ({len(evidence.changes)} resource change(s)); approve with "
          f"`qlrf approvals approve {args.task_id} --hash <plan hash> --evidence-hash {evidence.sha256} ...`")
    return 0


def cmd_plan_compliance(args: argparse.Namespace) -> int:
    from qlrf.cli import _print_queue, acting
    from qlrf.remediation.compliance_service import propose_compliance_day
    from qlrf.remediation.gate import Gate
    from qlrf.remediation.policy import RemediationPolicy
    from qlrf.settings import Settings
    from qlrf.warehouse import Warehouse

    proposer = acting(args.as_user, "propose", args.org).name
    store = _store()
    result = propose_compliance_day(Warehouse(Settings.from_env().warehouse), RemediationPolicy.load(args.policy), store, Gate.from_env(),
                                    day=args.date.isoformat() if args.date else None, site=args.site,
                                    requested_by=proposer, log=print)
    for asset, why in sorted(result.held.items()):
        print(f"held for a person: {asset}: {why}")
    print(f"{result.day}: {len(result.plans)} compliance plan(s), {len(result.held)} VM(s) held; "
          f"proposed {len(result.outcome.proposed)}, deferred {len(result.outcome.deferred) + len(result.outcome.queue_deferred)}",
          file=sys.stderr)
    _print_queue(store)
    return 0


def register(sub: Any) -> None:
    plan = _group(sub, "plan")
    tf = plan.add_parser("terraform", help="a Terraform-managed task: the change to the Terraform code (unified diff)")
    tf.add_argument("task_id")
    tf.add_argument("--repo", help="the Terraform checkout (default: the plan's terraform.repo)")
    tf.add_argument("--out", help="write the patch here (default: print it)")
    tf.add_argument("--branch", help="also commit the change on this new branch of the repo")
    tf.set_defaults(func=cmd_plan_terraform)
    ev = plan.add_parser("evidence", help="check a `terraform show -json` plan file for a task and record its sha256")
    ev.add_argument("task_id")
    ev.add_argument("plan_file")
    ev.add_argument("--actor", help="who sends the file (default: the CLI user)")
    ev.set_defaults(func=cmd_plan_evidence)
    cp = plan.add_parser("compliance", help="plan a day's compliance fixes (apply_tags, detach_public_ip), print the queue")
    cp.add_argument("--date", type=date.fromisoformat, help="YYYY-MM-DD; default: the newest vm_compliance day")
    cp.add_argument("--site")
    cp.add_argument("--policy", help="remediation policy file (default: QLRF_REMEDIATION_POLICY or policy/remediation.yaml)")
    cp.add_argument("--org", help="the organisation you propose in (default: unassigned); needs the operator role there")
    cp.add_argument("--as", dest="as_user", metavar="USER",
                    help="propose as this user (only in trusted local mode, QLRF_CLI_TRUSTED_LOCAL_USER)")
    cp.set_defaults(func=cmd_plan_compliance)
    approve = _group(sub, "approvals").choices["approve"]
    approve.add_argument("--evidence-hash", help="Terraform-managed tasks: the sha256 `qlrf plan evidence` accepted")


__all__ = ["plan_kind_lines", "register"]
