"""Smoke tests for the vSphere simulator fixture (tests/servers/vcsim.py) through real pyVmomi calls."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pytest

try:
    from tests.servers.vcsim import populate, retrieve_vms, start_vcsim, vcsim_needs_build
except ModuleNotFoundError:  # repo root not on sys.path (no `pythonpath = ["."]` in the pytest config)
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.servers.vcsim import populate, retrieve_vms, start_vcsim, vcsim_needs_build

pyVim_connect = pytest.importorskip("pyVim.connect")
from pyVmomi import vim, vmodl  # noqa: E402  (after importorskip on purpose)

# Building vcsim (Go compile, maybe apt-get) takes 15-40 s: slow until var/bin/vcsim is fresh.
pytestmark = [pytest.mark.slow] if vcsim_needs_build() else []


def _connect(server):
    return pyVim_connect.SmartConnect(
        protocol=server.protocol,
        host=server.host,
        port=server.port,
        user=server.user,
        pwd=server.password,
        disableSslCertValidation=True,
    )


@pytest.mark.parametrize("tls", [True, False], ids=["https", "http"])
def test_vcsim_lists_vms_through_property_collector(tls):
    with start_vcsim(vms=12, datacenters=2, clusters=2, tls=tls) as server:
        assert server.port > 0 and server.host == "127.0.0.1"
        assert server.url.startswith(("https://" if tls else "http://") + f"{server.user}:")
        assert server.expected_vms == 12

        si = _connect(server)
        try:
            content = si.RetrieveContent()
            assert content.about.apiType == "VirtualCenter"

            # Paging: the first page honours maxObjects and carries a token.
            rows = retrieve_vms(
                si, ["name", "config.instanceUuid", "config.uuid", "runtime.powerState"], page_size=5
            )
            view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
            pc = vmodl.query.PropertyCollector
            first = content.propertyCollector.RetrievePropertiesEx(
                specSet=[
                    pc.FilterSpec(
                        objectSet=[
                            pc.ObjectSpec(
                                obj=view,
                                skip=True,
                                selectSet=[
                                    pc.TraversalSpec(path="view", skip=False, type=vim.view.ContainerView)
                                ],
                            )
                        ],
                        propSet=[pc.PropertySpec(type=vim.VirtualMachine, pathSet=["name"])],
                    )
                ],
                options=pc.RetrieveOptions(maxObjects=5),
            )
            assert len(first.objects) == 5 and first.token
            content.propertyCollector.CancelRetrievePropertiesEx(token=first.token)
            view.DestroyView()
        finally:
            pyVim_connect.Disconnect(si)

    names = sorted(r["name"] for r in rows)
    expected = sorted(f"DC{d}_C{c}_RP0_VM{i}" for d in range(2) for c in range(2) for i in range(3))
    assert names == expected
    assert all(r["name"] for r in rows)
    instance_uuids = [r["config.instanceUuid"] for r in rows]
    assert all(uuid.UUID(u) for u in instance_uuids)
    assert len(set(instance_uuids)) == 12
    assert len({r["config.uuid"] for r in rows}) == 12
    assert {r["runtime.powerState"] for r in rows} == {"poweredOn"}
    assert {r["moid"] for r in rows} == {r["obj"]._moId for r in rows}


def test_vcsim_uuids_are_stable_across_runs():
    def snapshot_of_inventory():
        with start_vcsim(vms=4) as server:
            si = server.connect()
            try:
                return {
                    r["name"]: r["config.instanceUuid"]
                    for r in retrieve_vms(si, ["name", "config.instanceUuid"])
                }
            finally:
                pyVim_connect.Disconnect(si)

    first, second = snapshot_of_inventory(), snapshot_of_inventory()
    assert len(first) == 4 and first == second


def _observed(server):
    """Custom attributes, templates and snapshots as a connector would read them."""
    si = server.connect()
    try:
        keys = {f.key: f.name for f in si.RetrieveContent().customFieldsManager.field}
        rows = retrieve_vms(si, ["name", "customValue", "config.template", "snapshot", "config.instanceUuid"])
        vm = next(r["obj"] for r in rows if not r.get("snapshot"))
        assert vm.snapshot is None  # unset property via accessor: None, not a dropped connection
    finally:
        pyVim_connect.Disconnect(si)

    def chain(tree):
        names = []
        while tree:
            names.append(tree[0].name)
            tree = tree[0].childSnapshotList
        return names

    return {
        r["name"]: {
            "attributes": {keys[v.key]: v.value for v in r.get("customValue", [])},
            "template": bool(r.get("config.template")),
            "snapshots": chain(r["snapshot"].rootSnapshotList) if r.get("snapshot") else [],
            "instance_uuid": r["config.instanceUuid"],
        }
        for r in rows
    }


def test_vcsim_populate_custom_fields_templates_snapshots():
    kwargs = dict(
        seed=11, template_fraction=0.2, snapshot_fraction=0.5, max_snapshots=3, missing_fraction=0.1
    )
    runs = []
    for _ in range(2):
        with start_vcsim(vms=20, datacenters=1, clusters=2) as server:
            si = server.connect()
            try:
                population = populate(si, **kwargs)
            finally:
                pyVim_connect.Disconnect(si)
            runs.append((population, _observed(server)))

    (pop, seen), (pop2, seen2) = runs
    # Deterministic: same seed, same plan, same result on the server.
    assert (pop.attributes, pop.templates, pop.snapshots, pop.field_keys) == (
        pop2.attributes,
        pop2.templates,
        pop2.snapshots,
        pop2.field_keys,
    )
    assert seen == seen2

    assert sorted(pop.field_keys) == ["environment", "owner", "site", "template"]
    assert len(seen) == 20 + len(pop.image_templates)
    for image in pop.image_templates:
        assert seen[image]["template"] is True and seen[image]["attributes"] == {}
    model_vms = {name: obs for name, obs in seen.items() if name not in pop.image_templates}
    assert sorted(model_vms) == sorted(pop.attributes)
    for name, obs in model_vms.items():
        assert obs["attributes"] == pop.attributes[name]
        assert obs["template"] == (name in pop.templates)
        assert obs["snapshots"] == pop.snapshots.get(name, [])
    # The seed gives a mix of everything.
    assert pop.templates and pop.snapshots
    assert any(len(s) > 1 for s in pop.snapshots.values())
    assert any(len(a) < 4 for a in pop.attributes.values())
    assert {a.get("template") for a in pop.attributes.values()} - {None} <= set(pop.image_templates) | {
        "rhel8-golden-2025.02"
    }


@pytest.mark.slow
def test_vcsim_5000_vms_paged():
    t0 = time.monotonic()
    with start_vcsim(vms=5000, datacenters=2, clusters=5) as server:
        started = time.monotonic() - t0
        si = server.connect()
        try:
            t1 = time.monotonic()
            rows = retrieve_vms(si, ["name", "config.instanceUuid"], page_size=1000)
            listed = time.monotonic() - t1
        finally:
            pyVim_connect.Disconnect(si)
    print(f"vcsim 5000 VMs: start {started:.1f}s, list {listed:.2f}s")
    assert len(rows) == 5000
    assert len({r["config.instanceUuid"] for r in rows}) == 5000
    assert started < 60
