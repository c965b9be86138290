"""``qlrf plan journal TASK_ID``: a task's execution journal, one line per step (or JSON); and
``qlrf plan continue|rollback TASK_ID --hash H``: an approver's decision on a paused plan.

Registered onto the ``plan`` command group that :func:`qlrf.cli.add_remediation_commands` builds,
so cli.py only calls :func:`register` once.
"""

from __future__ import annotations

import argparse
import json


def _plan_group(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The ``plan`` command's own sub-commands (built before this is called)."""
    plan = sub.choices["plan"]
    return next(a for a in plan._actions if isinstance(a, argparse._SubParsersAction))


def register(sub: argparse._SubParsersAction) -> None:
    show = _plan_group(sub).add_parser(
        "journal", help="a task's execution journal: every step's intent and result, attempt by attempt")
    show.add_argument("task_id", metavar="TASK_ID")
    show.add_argument("--json", action="store_true", help="one JSON object per step")
    show.set_defaults(func=cmd_plan_journal)
    for choice, text in (("continue", "continue a paused plan from the wave where its canary analysis stopped it"),
                         ("rollback", "roll every wave of a paused plan back (from the journal's driver checkpoint)")):
        p = _plan_group(sub).add_parser(choice, help=text)
        p.add_argument("task_id", metavar="TASK_ID")
        p.add_argument("--hash", required=True, help="the plan hash you reviewed (qlrf approvals show TASK_ID)")
        p.add_argument("--reason", required=True, help="why: recorded in the audit log")
        p.add_argument("--as", dest="as_user", help="decide as this user (only in trusted local mode, QLRF_CLI_TRUSTED_LOCAL_USER)")
        p.set_defaults(func=cmd_plan_paused, choice=choice)


def cmd_plan_journal(args: argparse.Namespace) -> int:
    from qlrf.remediation.approvals import TaskStore
    from qlrf.remediation.journal import journal_lines
    from qlrf.remediation.recovery import journal_for

    store = TaskStore()
    task = store.get(args.task_id)  # TaskNotFound (a ValueError): one line naming the id, exit 2
    entries = journal_for(store).entries(task.id)
    if args.json:
        for entry in entries:
            print(json.dumps(entry.as_dict(), default=str))
        return 0
    print(f"{task.id} ({task.plan_id}) {task.state}: {len(entries)} journal step(s), "
          f"{len({e.attempt for e in entries})} attempt(s)")
    for line in journal_lines(entries):
        print(line)
    return 0


def cmd_plan_paused(args: argparse.Namespace) -> int:
    """paused -> approved with the approver's choice; the execution sensor (or `qlrf plan execute`) runs it."""
    from qlrf.cli_users import cli_caller
    from qlrf.remediation.approvals import TaskStore
    from qlrf.remediation.audit import AuditLog
    from qlrf.tenancy.enforce import review

    audit = AuditLog()
    store = TaskStore(audit=audit)
    principal = cli_caller(args.as_user, audit)  # an approver of the task's organisation, never its requester
    task = review(store, principal, args.task_id,
                  lambda who: store.decide_paused(args.task_id, args.hash, who, args.reason, args.choice))
    then = (f"continues from wave {store.paused_at(task.id)}" if args.choice == "continue"
            else "rolls back every wave it changed")
    print(f"{task.state}: {task.id} (plan {task.plan_hash}) by {task.approver}: the next execution {then}")
    return 0


__all__ = ["cmd_plan_journal", "cmd_plan_paused", "register"]
