"""A fifth platform's modules for the registry tests: a normaliser and a live connector, nothing else.

They exist to show that a new platform is one registry record plus its modules: nothing below
imports Dagster or names the four built-in platforms.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from qlrf.inventory.contract import Normalised
from qlrf.inventory.tags import TagMapping


@dataclass
class OciConfig:
    tenancy: str | None = None


def config_from_env(env: Mapping[str, str] | None = None) -> OciConfig:
    return OciConfig(tenancy=(env or {}).get("QLRF_OCI_TENANCY"))


def _vm(name: str, discovered_at: datetime) -> dict:
    return {"asset_id": f"oci:{name}", "platform": "oci", "account": "tenancy", "region": "eu-frankfurt-1",
            "name": name, "state": "running", "discovered_at": discovered_at}


def normalise(docs, *, mapping: TagMapping, discovered_at: datetime, account=None, region=None) -> Normalised:
    return Normalised(vms=[_vm(doc["name"], discovered_at) for _, items in docs for doc in items])


def discover(config: OciConfig, *, mapping: TagMapping, discovered_at: datetime, progress=None) -> Normalised:
    found = Normalised(vms=[_vm("live-1", discovered_at)], facts={"shapes": [{"platform": "oci", "shape": "E4"}]})
    if progress:
        progress("oci: 1 VM")
    return found
