"""Tenancy and access (issue 14): organisations, projects and environments, roles, identity, RLS set-up. See :mod:`qlrf.tenancy.roles`."""

from qlrf.tenancy.roles import ACTIONS, ALL_ORGS, ROLES, AccessDenied, Grant, Principal, authorise

__all__ = ["ACTIONS", "ALL_ORGS", "ROLES", "AccessDenied", "Grant", "Principal", "authorise"]
