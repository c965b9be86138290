"""``qlrf db migrate | setup-rls | rls-status``: the remediation database's schema and row-level security.

* ``migrate``: add the columns added since the database was created (``org`` with default
  ``unassigned`` on every per-tenant table, the audit log's ``org_seq``, ...); idempotent. Run as the
  tables' owner (an admin URL), before ``setup-rls``.
* ``setup-rls``: roles, forced RLS and the tenant policy, grants, security_invoker views
  (:mod:`qlrf.tenancy.rls`). PostgreSQL only; run as a superuser.
* ``rls-status``: per tenant table whether RLS is on and forced, the views, and whether the
  connecting role would bypass it. Exit 1 when anything is off.

``--url`` defaults to ``QLRF_POSTGRES_URL`` (never printed: it may hold a password).
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def register(sub: argparse._SubParsersAction) -> None:
    db = sub.add_parser("db", help="the task/audit database: migrations and row-level security").add_subparsers(
        dest="db_command", required=True)
    mig = db.add_parser("migrate", help="add columns introduced since the database was created (idempotent)")
    mig.add_argument("--url", help="database URL (default: QLRF_POSTGRES_URL, else the embedded SQLite)")
    mig.set_defaults(func=cmd_db_migrate)
    setup = db.add_parser("setup-rls", help="PostgreSQL: owner and application roles, forced RLS keyed on org")
    setup.add_argument("--url", help="an admin (superuser) URL (default: QLRF_POSTGRES_URL)")
    setup.add_argument("--owner-role", default="qlrf_owner", help="NOLOGIN role that owns the tables")
    setup.add_argument("--app-role", default="qlrf_app", help="LOGIN role the application connects as")
    setup.add_argument("--app-password-env", metavar="VAR",
                       help="set the application role's password from this environment variable")
    setup.set_defaults(func=cmd_db_setup_rls)
    status = db.add_parser("rls-status", help="per tenant table: RLS enabled and forced; exit 1 if anything is off")
    status.add_argument("--url", help="database URL (default: QLRF_POSTGRES_URL): check as the role you connect with")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_db_rls_status)


def cmd_db_migrate(args: argparse.Namespace) -> int:
    from qlrf.db import migrate

    added = migrate(args.url)
    print(f"migrated: added {', '.join(added)}" if added else "up to date: nothing to add")
    return 0


def cmd_db_setup_rls(args: argparse.Namespace) -> int:
    from qlrf.tenancy.rls import setup_rls

    password = None
    if args.app_password_env:
        password = os.environ.get(args.app_password_env)
        if not password:
            print(f"error: --app-password-env {args.app_password_env}: that variable is not set", file=sys.stderr)
            return 2
    for line in setup_rls(args.url, owner_role=args.owner_role, app_role=args.app_role, app_password=password):
        print(line)
    print(f"row-level security is set up: connect the application as {args.app_role} "
          f"(QLRF_POSTGRES_URL), never as {args.owner_role} or a superuser")
    return 0


def cmd_db_rls_status(args: argparse.Namespace) -> int:
    from qlrf.tenancy.rls import rls_status

    status = rls_status(args.url)
    problems = status.problems
    if args.json:
        print(json.dumps({
            "role": status.role, "superuser": status.superuser, "bypassrls": status.bypassrls,
            "tables": [{"table": t.name, "exists": t.exists, "rls": t.rls, "forced": t.forced,
                        "policies": list(t.policies), "owner": t.owner} for t in status.tables],
            "views": status.views, "problems": problems,
        }))
        return 1 if problems else 0
    print(f"connected as {status.role}" + (" (superuser)" if status.superuser else "")
          + (" (BYPASSRLS)" if status.bypassrls else ""))
    for t in status.tables:
        state = "missing" if not t.exists else (f"rls={'on' if t.rls else 'off'} forced={'yes' if t.forced else 'no'} "
                                                f"policies={','.join(t.policies) or '-'} owner={t.owner}")
        print(f"  {t.name:<24}{state}")
    for view, invoker in sorted(status.views.items()):
        print(f"  view {view:<19}security_invoker={'yes' if invoker else 'no'}")
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0
