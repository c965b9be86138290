"""The discovery fan-out (assets/discovery.py) gives what serial discovery gives, and a failing scope
is recorded while the others are written. One platform of the sample estate (vSphere: one manifest
file per vCenter x datacenter, i.e. several scopes), one scope per step."""

from __future__ import annotations

from datetime import UTC, date
from pathlib import Path

import pytest
from dagster import AssetSelection, MultiPartitionKey, materialize

from qlrf.inventory.columnar import Discovered
from qlrf.tenancy import model as tenancy
from qlrf.warehouse import Warehouse
from resources.estate import EstateResource
from tests.helpers import all_assets, resources_for

DAY = "2026-11-20"
KEY = MultiPartitionKey({"date": DAY, "platform": "vsphere"})
SELECTION = AssetSelection.assets("discovered_inventory", "inventory", "vm_snapshots", "cloud_images", "scaling_groups")


def _run(tmp_path: Path, estate: EstateResource | None = None):
    res = resources_for(tmp_path / "wh", tmp_path / "estate")
    if estate is not None:
        res["estate"] = estate
    return materialize(all_assets(), selection=SELECTION, partition_key=KEY, resources=res, raise_on_error=False)


def _columns(found: Discovered) -> tuple:
    return (found.vms.to_pylist(), found.snapshots.to_pylist(), found.origins.to_pylist(),
            [str(e) for e in found.errors], found.failed_scopes, found.facts, found.unmapped)


def _unordered(found: Discovered) -> tuple:
    def rows(items: list) -> list[str]:
        return sorted(repr(sorted(row.items(), key=lambda kv: kv[0])) for row in items)

    return (rows(found.vms.to_pylist()), rows(found.snapshots.to_pylist()), {k: rows(v) for k, v in found.facts.items()},
            found.failed_scopes, sorted(str(e) for e in found.errors))


@pytest.mark.slow
def test_fan_out_equals_serial_discovery(tmp_path, monkeypatch):
    monkeypatch.setenv("QLRF_SCOPES_PER_STEP", "1")
    result = _run(tmp_path)
    assert result.success
    steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
    scope_steps = [s for s in steps if "discover_scope[" in s]
    assert len(scope_steps) >= 3  # the sample's vSphere estate is several vCenter x datacenter files
    checks = {(e.asset_check_evaluation_data.asset_key.to_user_string(), e.asset_check_evaluation_data.check_name):
              e.asset_check_evaluation_data.passed for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks[("discovered_inventory", "every_batch_merged")] is True

    fanned = result.output_for_node("discovered_inventory")
    at = fanned.vms["discovered_at"][0].as_py()
    serial = EstateResource(estate_dir=str(tmp_path / "estate"), seed=7).inventory(date.fromisoformat(DAY), "vsphere", at)
    # Each batch is stamped with org/project (contract 1.1) and typed by the contract where it was discovered.
    serial = Discovered.of(serial, tenancy.current())
    assert _columns(fanned) == _columns(serial)
    written = Warehouse(str(tmp_path / "wh")).read("inventory", DAY, "vsphere")
    assert written.equals(serial.vms.select(written.schema.names).cast(written.schema))


@pytest.mark.slow
def test_a_failing_scope_is_recorded_and_the_rest_written(tmp_path, monkeypatch):
    """Live GCP against the loopback GCE fake: four projects, one refusing access, one per step."""
    import google.auth
    from google.auth.credentials import AnonymousCredentials

    from qlrf.inventory.connectors import gcp as connector
    from qlrf.inventory.tags import TagMapping
    from resources.discovery import DiscoveryResource
    from resources.gcp import GcpResource
    from tests.fakes.fixtures import gcp_fixture
    from tests.fakes.gcp_fake import start_gcp_fake

    monkeypatch.setenv("QLRF_SCOPES_PER_STEP", "1")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setattr(google.auth, "default", lambda scopes=None, **kw: (AnonymousCredentials(), None))
    fx = gcp_fixture(projects=3, instances_per_project=4, failing_projects=1)
    projects = list(fx["workload_projects"])
    key = MultiPartitionKey({"date": DAY, "platform": "gcp"})
    with start_gcp_fake(fx) as fake:
        res = resources_for(tmp_path / "wh", tmp_path / "estate")
        res["estate"] = EstateResource(estate_dir=str(tmp_path / "estate"), sources={"gcp": "live"})
        res["discovery"] = DiscoveryResource(gcp=GcpResource(endpoint=fake.base_url, projects=projects))
        result = materialize(all_assets(), selection=SELECTION, partition_key=key, resources=res, raise_on_error=False)
        merged = result.output_for_node("discovered_inventory")
        serial = connector.discover(
            connector.GcpConfig(projects=projects, api_endpoint=fake.base_url, credentials=AnonymousCredentials()),
            mapping=TagMapping.from_file(None), discovered_at=merged.vms["discovered_at"][0].as_py().replace(tzinfo=UTC),  # repr-compared below
        )
    serial = Discovered.of(serial, tenancy.current())
    assert result.success  # the other projects are written...
    scope_steps = [e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS" and "discover_scope[" in e.step_key]
    assert len(scope_steps) == len(projects) == 4  # three healthy projects and one refusing access
    assert len(merged.failed_scopes) == 1 and merged.failed_scopes[0]["scope"].startswith("gcp:")  # ...the run says which
    assert merged.failed_scopes[0]["reason"]  # ...and why
    # The same rows, facts and failures as one serial call (the live connector's row order within a
    # project follows its page fetches, so rows are compared as sets of rows).
    assert _unordered(merged) == _unordered(serial)

    wh = Warehouse(str(tmp_path / "wh"))
    written = wh.read("inventory", DAY, "gcp")
    assert written.num_rows == serial.vms.num_rows > 0
    meta = wh.run_metadata("inventory", DAY, "gcp")  # never written as if whole
    assert meta["complete"] is False and meta["failed_scopes"] == merged.failed_scopes
    checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["all_scopes_discovered"] is False and checks["matches_contract"] is True
