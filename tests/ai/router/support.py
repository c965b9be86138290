"""Shared pieces of the router tests: a small scored warehouse and a real ToolBox per agent."""

from __future__ import annotations

from datetime import UTC, date, datetime

from qlrf.ai.agents import shipped_agents
from qlrf.ai.answers import AskContext
from qlrf.ai.tools import READ_ONLY_TOOLS, ToolBox, ToolContext
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.warehouse import Warehouse
from tests.ai.support import openssl_packages, scored_aws_day
from tests.ai.test_tools import REGISTRY, _vm

DAY = date(2026, 11, 20)
AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

VMS = [_vm(1, "lon1", "prod", "ami-00000003"), _vm(2, "lon1", "prod", "ami-00000001"),
       _vm(3, "lon1", "dev", "ami-00000002", state="stopped"), _vm(4, "fra1", "prod", "ami-00000002"),
       _vm(6, "syd1", "prod", "ami-00000001"), _vm(7, "syd1", "staging", "ami-00000003")]


def small_warehouse(root: str) -> Warehouse:
    """One AWS day of six VMs at lon1, fra1 and syd1, scored by the real stages, with an SBOM index."""
    wh = Warehouse(root)
    scored_aws_day(wh, DAY, AS_OF, REGISTRY, VMS)
    openssl_packages(wh, DAY)
    return wh


class Boxes:
    """``toolbox_for``: a fresh ToolBox per question limited to the agent's tools, over one audit log."""

    def __init__(self, warehouse: Warehouse, db_url: str, clock=lambda: AS_OF) -> None:
        self.audit = AuditLog(db_url)
        self.tasks = TaskStore(db_url, audit=self.audit, clock=clock)
        self.context = ToolContext(warehouse, self.audit, self.tasks)

    def __call__(self, agent: str) -> ToolBox:
        allowed = set(shipped_agents()[agent].tools)
        return ToolBox([t for t in READ_ONLY_TOOLS if t.name in allowed], self.context, self.audit, conversation="q")

    def ask(self, intent: str, org: str | None = None) -> AskContext:
        return AskContext(intent=intent, requested_by="alice@example.com", org=org, toolbox_for=self, conversation="q")
