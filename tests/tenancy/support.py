"""What tests that act through an entry point share: a role table with grants, and the CLI's trusted
local operator.

Grants are written with a platform admin principal that exists only in the test (the role table
never learns it), so a test states exactly which roles its users hold.
"""

from __future__ import annotations

from typing import Any

from qlrf.tenancy.claims import parse_grant
from qlrf.tenancy.roles import Grant, Principal

TEST_ADMIN = Principal(name="test:admin", mode="trusted_local", grants=(Grant("admin", "*"),))


def grant_store(url: str | None = None) -> Any:
    from qlrf.remediation.audit import AuditLog
    from qlrf.tenancy.store import GrantStore

    audit = AuditLog(url)
    return GrantStore(engine=audit.engine, audit=audit)


def grant(name: str, *grants: str, url: str | None = None) -> Any:
    """Give `name` each ``role@org[/project]`` grant in the role table of `url` (default: the environment's)."""
    store = grant_store(url)
    for text in grants:
        store.grant(name, parse_grant(text), by=TEST_ADMIN)
    return store


def local_operator(monkeypatch: Any, name: str, *grants: str, url: str | None = None) -> Any:
    """The CLI's trusted local mode for `name`, holding `grants` (no sign-in token around)."""
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", name)
    monkeypatch.delenv("QLRF_ID_TOKEN", raising=False)
    return grant(name, *grants, url=url)

# The attack suite's tally (tests/tenancy/test_attacks.py): attempts made, and those refused with every
# check of the refusal holding. Printed by its last test and in the terminal summary (conftest.py).
ATTACKS: dict[str, int] = {"attempts": 0, "refused": 0}
