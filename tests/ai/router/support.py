"""Shared pieces of the router tests: a small scored warehouse and a real ToolBox per agent."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa

from qlrf.ai.agents import shipped_agents
from qlrf.ai.answers import AskContext
from qlrf.ai.tools import READ_ONLY_TOOLS, ToolBox, ToolContext
from qlrf.baselines.contracts import REGISTRY_SCHEMA
from qlrf.baselines.sbom import PACKAGES_SCHEMA
from qlrf.inventory.contract import inventory_table, snapshot_table
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.scoring import compliance, stages
from qlrf.warehouse import Warehouse
from tests.ai.test_tools import REGISTRY, _vm

DAY = date(2026, 11, 20)
AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

VMS = [_vm(1, "lon1", "prod", "ami-00000003"), _vm(2, "lon1", "prod", "ami-00000001"),
       _vm(3, "lon1", "dev", "ami-00000002", state="stopped"), _vm(4, "fra1", "prod", "ami-00000002"),
       _vm(6, "syd1", "prod", "ami-00000001"), _vm(7, "syd1", "staging", "ami-00000003")]


def small_warehouse(root: str) -> Warehouse:
    """One AWS day of six VMs at lon1, fra1 and syd1, scored by the real stages."""
    wh = Warehouse(root)
    wh.write("golden_images", pa.Table.from_pylist(REGISTRY, schema=REGISTRY_SCHEMA), DAY)
    wh.write("inventory", inventory_table(VMS), DAY, "aws")
    wh.write("vm_snapshots", snapshot_table([{"asset_id": "i-0001", "platform": "aws", "snapshot_id": "s1",
                                              "created_at": AS_OF - timedelta(hours=2)}]), DAY, "aws")
    stages.run_drift(wh, DAY, "aws", AS_OF)
    stages.run_compliance(wh, DAY, "aws", AS_OF, compliance.load_catalogue(), [])
    stages.run_dr(wh, DAY, "aws", AS_OF)
    packages = [{"family": "ubuntu-22", "version": v, "package": "openssl", "package_version": pv, "purl": None,
                 "license": None} for v, pv in (("1.0", "3.0.2"), ("1.1", "3.0.7"), ("1.2", "3.0.9"))]
    wh.write("image_packages", pa.Table.from_pylist(packages, schema=PACKAGES_SCHEMA), DAY)
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
