"""``qlrf plan journal TASK_ID``: a task's execution journal, one line per step (or JSON).

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


__all__ = ["cmd_plan_journal", "register"]
