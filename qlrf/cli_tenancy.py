"""``qlrf tenancy``: the organisation/project mapping (policy/tenancy.yaml, issue 14).

* ``check [--date D] [--json]``: validate the file, then check it against the newest (or the given)
  inventory: scopes no project maps (their VMs resolve to ``unassigned``), organisations and projects
  with no VM. Exit 0 when every VM has an organisation, 1 when a scope is unmapped, 2 on a bad file.
* ``resolve PLATFORM SCOPE``: which organisation/project a scope belongs to (exit 1 when unmapped).
"""

from __future__ import annotations

import argparse
import json
import sys


def inventory_scopes(wh, day: str) -> dict[tuple[str, str, str], int]:
    """(platform, account, environment) -> VMs in the day's inventory partitions (two columns are read)."""
    from qlrf.inventory.contract import PLATFORMS

    counts: dict[tuple[str, str, str], int] = {}
    for platform in PLATFORMS:
        if wh.exists("inventory", day, platform):
            table = wh.read("inventory", day, platform, columns=["account", "environment"])
            for account, environment in zip(table["account"].to_pylist(), table["environment"].to_pylist(), strict=True):
                key = (platform, str(account or ""), str(environment or "unknown"))
                counts[key] = counts.get(key, 0) + 1
    return counts


def cmd_check(args: argparse.Namespace) -> int:
    from qlrf.settings import Settings
    from qlrf.tenancy import model
    from qlrf.warehouse import Warehouse

    try:
        tenancy = model.load(args.file)
    except model.TenancyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    wh = Warehouse(Settings.from_env().warehouse)
    day = args.date.isoformat() if args.date else (wh.dates("inventory") or [None])[-1]
    detail = inventory_scopes(wh, day) if day else {}
    scopes: dict[tuple[str, str], int] = {}
    for (platform, account, _), vms in detail.items():
        scopes[(platform, account)] = scopes.get((platform, account), 0) + vms
    result = model.check(tenancy, scopes, day, detail)
    if args.json:
        print(json.dumps({"file": tenancy.source, "day": result.day, "vms": result.vms, "by_org": result.by_org,
                          "unmapped": [{"platform": p, "scope": s, "vms": n} for p, s, n in result.unmapped],
                          "empty_orgs": list(result.empty_orgs), "empty_projects": list(result.empty_projects),
                          "other_environments": [{"project": p, "environment": e, "vms": n}
                                                 for p, e, n in result.other_environments],
                          "ok": result.ok}, sort_keys=True))
    else:
        print("\n".join(result.lines(tenancy.source)))
    return 0 if result.ok else 1


def cmd_resolve(args: argparse.Namespace) -> int:
    from qlrf.tenancy import model

    try:
        tenancy = model.load(args.file)
    except model.TenancyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    org, project = tenancy.resolve(args.platform, args.scope)
    print(f"{org}/{project}" if org != model.UNASSIGNED else f"{model.UNASSIGNED}: {args.platform} scope {args.scope!r} is not mapped in {tenancy.source}")
    return 0 if org != model.UNASSIGNED else 1


def register(sub: argparse._SubParsersAction, day) -> None:
    """Add ``qlrf tenancy check|resolve``; `day` parses a --date value (cli.py's own parser)."""
    from qlrf.platforms import PLATFORMS

    group = sub.add_parser("tenancy", help="organisations and projects: check the mapping, resolve a scope")
    cmds = group.add_subparsers(dest="tenancy_command", required=True)
    chk = cmds.add_parser("check", help="validate the tenancy file against the latest inventory")
    chk.add_argument("--date", type=day, default=None, help="inventory day (default: the newest)")
    chk.add_argument("--json", action="store_true")
    chk.set_defaults(func=cmd_check)
    res = cmds.add_parser("resolve", help="the organisation/project of an inventory scope")
    res.add_argument("platform", choices=PLATFORMS)
    res.add_argument("scope", help="AWS account id, Azure subscription id, GCP project id or vCenter host")
    res.set_defaults(func=cmd_resolve)
    for p in (chk, res):
        p.add_argument("--file", default=None, help="tenancy file (default: $QLRF_TENANCY_FILE or policy/tenancy.yaml)")
