"""Roles, actions and the one authorisation check every entry point calls.

Why one place: the dashboard, the CLI, the HTTP API and the AI orchestrator each learn *who* is acting
in their own way (sign-in token, trusted local mode, bearer token), but *what that person may do* must
be decided identically everywhere, or the weakest door decides. Entry points build a
:class:`Principal` and call :func:`authorise`; nothing else compares role names.

Roles are cumulative (viewer < operator < approver < admin) and granted per organisation, optionally
narrowed to one project. ``org="*"`` grants across every organisation (a platform admin). Separation
of duties (a requester never approves their own plan) is enforced by the task store, not here, because
only it knows who requested a task.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

ROLES: tuple[str, ...] = ("viewer", "operator", "approver", "admin")
ALL_ORGS = "*"

# action -> the least role that may perform it
ACTIONS: dict[str, str] = {
    "read": "viewer",  # pages, reports, sbom query, audit read
    "ask": "operator",  # the AI copilot / orchestrator
    "propose": "operator",  # remediation, compliance, terraform plans
    "drill": "operator",  # DR drills in non-production environments
    "drill_production": "approver",  # DR drills touching production
    "approve": "approver",  # approve / reject / modify a task
    "admin": "admin",  # users, roles, policies
}

# identity modes: how the principal was established
MODES = ("signed_in", "token", "trusted_local", "none")


class AccessDenied(PermissionError):
    """The principal may not perform the action in the scope; the message says who, what, where and why."""


def rank(role: str) -> int:
    try:
        return ROLES.index(role)
    except ValueError:
        raise ValueError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}") from None


@dataclass(frozen=True)
class Grant:
    role: str
    org: str  # an organisation id, or ALL_ORGS
    project: str | None = None  # None: every project of the organisation

    def __post_init__(self) -> None:
        rank(self.role)
        if not self.org or not self.org.strip():
            raise ValueError("a grant needs an organisation (or '*')")

    def covers(self, org: str, project: str | None) -> bool:
        if self.org not in (ALL_ORGS, org):
            return False
        return self.project is None or (project is not None and self.project == project)


@dataclass(frozen=True)
class Principal:
    name: str | None  # normalised identity (lower-case); None when nobody is identified
    mode: str = "none"
    grants: tuple[Grant, ...] = field(default_factory=tuple)

    def role_in(self, org: str, project: str | None = None) -> str | None:
        """The highest role this principal holds for (org, project), or None."""
        best = -1
        for g in self.grants:
            if g.covers(org, project):
                best = max(best, rank(g.role))
        return ROLES[best] if best >= 0 else None

    def orgs(self, action: str = "read", known: Iterable[str] = ()) -> set[str]:
        """Organisations where `action` is allowed on at least the whole org or one of its projects;
        an ALL_ORGS grant expands to `known`."""
        need = rank(ACTIONS[action])
        out: set[str] = set()
        for g in self.grants:
            if rank(g.role) >= need:
                out.update(known if g.org == ALL_ORGS else (g.org,))
        return out

    def everywhere(self, action: str) -> bool:
        """True when an organisation-wide grant over every organisation (``*``) allows `action`."""
        need = rank(ACTIONS[action])
        return any(g.org == ALL_ORGS and g.project is None and rank(g.role) >= need for g in self.grants)

    def may(self, action: str, org: str, project: str | None = None) -> bool:
        role = self.role_in(org, project)
        return role is not None and rank(role) >= rank(ACTIONS[action])


def authorise(principal: Principal, action: str, org: str, project: str | None = None) -> None:
    """Raise AccessDenied unless `principal` may do `action` in (org, project)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    if principal.name is None:
        raise AccessDenied(f"{action} in {org}: nobody is signed in (sign in, or configure the trusted local mode)")
    if not principal.may(action, org, project):
        held = principal.role_in(org, project) or "no role"
        where = f"{org}/{project}" if project else org
        raise AccessDenied(
            f"{principal.name} may not {action} in {where}: that needs the {ACTIONS[action]} role, they hold {held}"
        )


__all__ = ["ACTIONS", "ALL_ORGS", "MODES", "ROLES", "AccessDenied", "Grant", "Principal", "authorise", "rank"]
