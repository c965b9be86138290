"""``qlrf users list|add|grant|revoke``: the local role table (issue 14 item 6), and the CLI's caller.

Every change needs an admin of the grant's organisation (``admin@*`` for ``*`` grants) and is
audited (``user_added``, ``grant_added``, ``grant_revoked``; a refusal ``access_denied``). The first
admin: ``qlrf users add NAME --admin`` in trusted local mode (``QLRF_CLI_TRUSTED_LOCAL_USER``) while
the table holds no admin; audited as ``admin_bootstrapped``. After that only admins grant.

:func:`cli_caller` is what every CLI command that acts calls to learn who is acting (see
:mod:`qlrf.tenancy.identity`); a refusal exits with :data:`~qlrf.tenancy.enforce.DENIED_EXIT`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from qlrf.tenancy.identity import LOCAL_USER_VARIABLE, cli_principal
from qlrf.tenancy.roles import Principal


def grant_store(audit: Any = None) -> Any:
    """The role table in the task store's database, audited in its audit log."""
    from qlrf.tenancy.store import grant_store as audited

    return audited(audit)


def cli_caller(as_user: str | None, audit: Any = None, env: Any = None) -> Principal:
    """Who runs this command, with their grants as of now (IdentityRefused, audited, when nobody)."""
    return cli_principal(as_user, env, grant_store(audit))


def add_as_argument(parser: argparse.ArgumentParser, what: str = "act") -> None:
    parser.add_argument("--as", dest="as_user", metavar="USER",
                        help=f"{what} as this user (only in trusted local mode, {LOCAL_USER_VARIABLE})")


def cmd_users_list(args: argparse.Namespace) -> int:
    store = grant_store()
    cli_principal(args.as_user, None, store)  # identified callers only: the table says who may do what
    rows = store.list()
    if args.json:
        print(json.dumps([{"name": u.name, "created_by": u.created_by,
                           "created_at": u.created_at.isoformat() if u.created_at else None,
                           "grants": [_label(g) for g in u.grants]} for u in rows]))
        return 0
    for u in rows:
        print(f"{u.name:<32} {', '.join(_label(g) for g in u.grants) or '(no grants)'}")
    print(f"{len(rows)} user(s)", file=sys.stderr)
    return 0


def _label(g: Any) -> str:
    return f"{g.role}@{g.org}" + (f"/{g.project}" if g.project else "")


def cmd_users_add(args: argparse.Namespace) -> int:
    store = grant_store()
    by = cli_principal(args.as_user, None, store)
    if args.admin:
        if by.mode != "trusted_local":
            from qlrf.tenancy.enforce import deny_record
            from qlrf.tenancy.roles import AccessDenied

            why = (f"{by.name} may not bootstrap an admin: only the trusted local operator can "
                   f"({LOCAL_USER_VARIABLE}); otherwise ask an admin to run `qlrf users grant NAME admin@ORG`")
            deny_record(store.audit, who=by.name, action="admin", org="*", project=None, why=why,
                        subject=f"user:{args.name.strip().lower()}", mode=by.mode)
            raise AccessDenied(why)
        grant = store.bootstrap_admin(args.name, operator=by.name)
        print(f"{args.name.strip().lower()}: {_label(grant)} (first admin, bootstrapped by {by.name})")
        return 0
    added = store.add_user(args.name, by=by)
    print(f"{args.name.strip().lower()}: {'added' if added else 'already registered'}")
    return 0


def _grant_change(args: argparse.Namespace, revoke: bool) -> int:
    from qlrf.tenancy.claims import parse_grant

    grant = parse_grant(args.grant)  # ClaimError (a ValueError): one line naming the entry, exit 2
    store = grant_store()
    by = cli_principal(args.as_user, None, store)
    (store.revoke if revoke else store.grant)(args.name, grant, by=by)
    print(f"{args.name.strip().lower()}: {'revoked' if revoke else 'granted'} {_label(grant)} by {by.name}")
    return 0


def cmd_users_grant(args: argparse.Namespace) -> int:
    return _grant_change(args, revoke=False)


def cmd_users_revoke(args: argparse.Namespace) -> int:
    return _grant_change(args, revoke=True)


def register(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="the local role table: users and their role@org grants (admins only change it)"
                           ).add_subparsers(dest="users_command", required=True)
    ls = users.add_parser("list", help="every user and their grants")
    ls.add_argument("--json", action="store_true")
    add_as_argument(ls)
    ls.set_defaults(func=cmd_users_list)
    add = users.add_parser("add", help="register a user (an admin); --admin: bootstrap the first admin (trusted local mode, "
                                       "only while there is none)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="make NAME admin@* (the first admin only)")
    add_as_argument(add)
    add.set_defaults(func=cmd_users_add)
    for name, func, verb in (("grant", cmd_users_grant, "give"), ("revoke", cmd_users_revoke, "take away")):
        p = users.add_parser(name, help=f"{verb} a role: ROLE@ORG or ROLE@ORG/PROJECT (ROLE@* for every organisation)")
        p.add_argument("name")
        p.add_argument("grant", metavar="ROLE@ORG[/PROJECT]")
        add_as_argument(p)
        p.set_defaults(func=func)


__all__ = ["add_as_argument", "cli_caller", "grant_store", "register"]
