"""The daily graph over a live connector: vSphere discovered from vcsim through pyVmomi.

The rest of the graph must not be able to tell a live estate from an export, and a vCenter that
fails is recorded (which and why), fails a check, and does not stop the others being written.
"""

from __future__ import annotations

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance

from qlrf.warehouse import Warehouse
from tests.fakes.base import free_port
from tests.helpers import materialize_day
from tests.servers.vcsim import populate, start_vcsim

DAY = "2026-11-23"


@pytest.mark.slow
def test_live_vsphere_partition_with_one_failed_vcenter(tmp_path, monkeypatch):
    with start_vcsim(vms=12, datacenters=1, clusters=2) as server:
        population = populate(server.connect(), seed=3, template_fraction=0.0, snapshot_fraction=0.5)
        dead = free_port()
        monkeypatch.setenv("QLRF_SOURCE_VSPHERE", "live")
        monkeypatch.setenv("QLRF_VSPHERE_HOSTS", f"{server.host}:{server.port},127.0.0.1:{dead}")
        monkeypatch.setenv("QLRF_VSPHERE_USER", server.user)
        monkeypatch.setenv("QLRF_VSPHERE_PASSWORD", server.password)
        monkeypatch.setenv("QLRF_VSPHERE_INSECURE", "1")
        instance = DagsterInstance.ephemeral()
        results = materialize_day(tmp_path / "wh", tmp_path / "estate", DAY, platforms=("vsphere",), instance=instance)
    assert all(r.success for r in results)  # a failed scope fails a check, not the run
    wh = Warehouse(str(tmp_path / "wh"))
    inv = wh.read("inventory", DAY, "vsphere").to_pylist()
    assert len(inv) == 12  # the golden templates populate() cloned are templates, not VMs
    assert {r["account"] for r in inv} == {f"{server.host}:{server.port}"}
    assert {r["region"] for r in inv} == {"DC0"}
    by_name = {r["name"]: r for r in inv}
    for name, attrs in population.attributes.items():
        if name in by_name and "site" in attrs:
            assert by_name[name]["site"] == attrs["site"]
    meta = wh.run_metadata("inventory", DAY, "vsphere")
    assert meta["complete"] is False
    assert [f["scope"] for f in meta["failed_scopes"]] == [f"vsphere:127.0.0.1:{dead}"]
    check = AssetCheckKey(AssetKey("inventory"), "all_scopes_discovered")
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([check])[check]
    assert record.event.dagster_event.event_specific_data.passed is False
    # Downstream scored the live rows like any export.
    assert wh.read("vm_drift", DAY, "vsphere").num_rows == 12
    summary = {r["platform"]: r for r in wh.read("fleet_report", DAY).to_pylist()}
    assert summary["vsphere"]["vms"] == 12
    snaps = wh.read("vm_snapshots", DAY, "vsphere").num_rows
    assert snaps == sum(len(v) for k, v in population.snapshots.items() if k in by_name)
