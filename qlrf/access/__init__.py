"""Who may do what, in which organisation and project (issue 14). See :mod:`qlrf.access.roles`."""

from qlrf.access.roles import ACTIONS, ALL_ORGS, ROLES, AccessDenied, Grant, Principal, authorise

__all__ = ["ACTIONS", "ALL_ORGS", "ROLES", "AccessDenied", "Grant", "Principal", "authorise"]
