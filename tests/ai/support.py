"""Shared pieces of the AI tests: a small warehouse day scored by the real stages."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pyarrow as pa

from qlrf.baselines.contracts import REGISTRY_SCHEMA
from qlrf.baselines.sbom import PACKAGES_SCHEMA
from qlrf.inventory.contract import inventory_table, snapshot_table
from qlrf.scoring import compliance, stages
from qlrf.warehouse import Warehouse


def scored_aws_day(wh: Warehouse, day: date, as_of: datetime, registry: list[dict], vms: list[dict]) -> None:
    """golden_images, then an AWS inventory (one fresh snapshot, of i-0001) scored: drift, compliance, DR."""
    wh.write("golden_images", pa.Table.from_pylist(registry, schema=REGISTRY_SCHEMA), day)
    wh.write("inventory", inventory_table(vms), day, "aws")
    wh.write("vm_snapshots", snapshot_table([{"asset_id": "i-0001", "platform": "aws", "snapshot_id": "s1",
                                              "created_at": as_of - timedelta(hours=2)}]), day, "aws")
    stages.run_drift(wh, day, "aws", as_of)
    stages.run_compliance(wh, day, "aws", as_of, compliance.load_catalogue(), [])
    stages.run_dr(wh, day, "aws", as_of)


def openssl_packages(wh: Warehouse, day: date) -> None:
    """The SBOM index of ubuntu-22 1.0-1.2: openssl 3.0.2, 3.0.7, 3.0.9."""
    packages = [{"family": "ubuntu-22", "version": v, "package": "openssl", "package_version": pv, "purl": None,
                 "license": None} for v, pv in (("1.0", "3.0.2"), ("1.1", "3.0.7"), ("1.2", "3.0.9"))]
    wh.write("image_packages", pa.Table.from_pylist(packages, schema=PACKAGES_SCHEMA), day)
