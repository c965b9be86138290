"""qlrf.inventory.connectors.vsphere through real pyVmomi calls against the project's vcsim (tests/servers/vcsim.py)."""

from __future__ import annotations

import json
import re
import ssl
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

try:
    from tests.servers.vcsim import populate, start_vcsim, vcsim_needs_build
except ModuleNotFoundError:  # repo root not on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.servers.vcsim import populate, start_vcsim, vcsim_needs_build

pytest.importorskip("pyVim.connect")

from qlrf.inventory.connectors import vsphere  # noqa: E402
from qlrf.inventory.contract import inventory_table, json_default, snapshot_table  # noqa: E402
from qlrf.inventory.normalize.vsphere import normalise  # noqa: E402
from qlrf.inventory.tags import TagMapping  # noqa: E402
from resources.vsphere import VsphereResource  # noqa: E402  (module level: Dagster resolves annotations)
from tests.fakes.base import free_port

# Building vcsim (Go compile, maybe apt-get) takes 15-40 s: slow until var/bin/vcsim is fresh.
pytestmark = [pytest.mark.slow] if vcsim_needs_build() else []

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
MAPPING = TagMapping()
PASSWORD = "s3cret-Pa55"


def _vc(server, **overrides) -> vsphere.VcenterConfig:
    fields = {
        "host": server.host,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "protocol": server.protocol,
        "verify_tls": False,
    }
    fields.update(overrides)
    return vsphere.VcenterConfig(**fields)


@pytest.fixture(scope="module")
def estate():
    """24 VMs in 2 datacenters x 2 clusters; attributes, 3 image templates, some VM templates, snapshot chains."""
    started = datetime.now(UTC)
    with start_vcsim(vms=24, datacenters=2, clusters=2) as server:
        si = server.connect()
        try:
            pop = populate(si, seed=1, template_fraction=0.15, snapshot_fraction=0.4, missing_fraction=0.1)
        finally:
            vsphere.disconnect(si)
        yield server, pop, started


@pytest.fixture(scope="module")
def discovered(estate):
    server, _, _ = estate
    stats: list[vsphere.VcenterStats] = []
    messages: list[str] = []
    config = vsphere.VsphereConfig(vcenters=[_vc(server)], page_size=5)
    out = vsphere.discover(config, mapping=MAPPING, discovered_at=NOW, progress=messages.append, stats=stats)
    return out, stats, messages


def test_vms_topology_attributes_and_paging(estate, discovered):
    server, pop, _ = estate
    out, stats, messages = discovered
    assert out.failed_scopes == [] and out.errors == []
    label = f"127.0.0.1:{server.port}"

    model_vms = {name for name in pop.attributes if name not in pop.templates}
    rows = {r["name"]: r for r in out.vms}
    assert set(rows) == model_vms  # templates (marked or cloned images) are not VMs
    assert len({r["asset_id"] for r in out.vms}) == len(out.vms)
    for name, row in rows.items():
        dc, cluster = re.match(r"(DC\d+)_(C\d+)_", name).groups()
        attrs = pop.attributes[name]
        assert row["platform"] == "vsphere" and row["account"] == label
        assert row["region"] == dc
        assert row["zone"] == f"{dc}_{cluster}"
        assert row["tags"] == attrs
        assert row["site"] == attrs.get("site")
        assert row["environment"] == attrs.get("environment")
        assert row["owner"] == attrs.get("owner")
        assert row["image_ref"] == attrs.get("template")
        assert row["state"] == "running"
        assert row["instance_type"] == "1vCPU-32MB"
        assert row["discovered_at"] == NOW
    assert any(len(a) < 4 for a in pop.attributes.values())  # missing attributes were exercised
    inventory_table(out.vms)  # contract-conformant

    # 24 model VMs + 3 image templates at 5 per page: 6 pages, and the progress callback saw them.
    assert stats[0].pages == 6 and stats[0].vcenter == label
    assert stats[0].vms == len(model_vms) and stats[0].error is None
    assert sum(": page " in m for m in messages) == 6
    assert any(m.startswith(f"vsphere {label}: done, {len(model_vms)} VMs") for m in messages)


def test_templates_are_facts(estate, discovered):
    _, pop, _ = estate
    out, _, _ = discovered
    templates = {t["name"]: t for t in out.facts["templates"]}
    assert set(templates) == set(pop.templates) | set(pop.image_templates)
    assert pop.templates  # some model VMs were marked as templates
    for name, t in templates.items():
        expected_dc = "DC0" if name in pop.image_templates else name.split("_", 1)[0]
        assert t["datacenter"] == expected_dc
        assert t["vcenter"] == out.vms[0]["account"]
        assert t["instance_uuid"] and t["guest_os"] == "otherGuest"
    assert {templates[n]["moid"] for n in pop.image_templates} == set(pop.image_templates.values())


def test_snapshots_with_times(estate, discovered):
    _, pop, started = estate
    out, stats, _ = discovered
    by_name = {r["asset_id"]: r["name"] for r in out.vms}
    seen: dict[str, int] = {}
    for snap in out.snapshots:
        name = by_name[snap["asset_id"]]
        seen[name] = seen.get(name, 0) + 1
        assert snap["platform"] == "vsphere" and snap["region"] == name.split("_", 1)[0]
        assert snap["snapshot_id"].startswith("snapshot-")
        assert started - timedelta(seconds=5) <= snap["created_at"] <= datetime.now(UTC)
    expected = {n: len(s) for n, s in pop.snapshots.items() if n not in pop.templates}
    assert seen == expected and any(v > 1 for v in expected.values())  # whole chains, not just roots
    assert stats[0].snapshots == sum(expected.values())
    snapshot_table(out.snapshots)


def test_parity_with_file_normaliser(estate, discovered):
    """The documents are plain `govc vm.info -json` JSON: the file normaliser gives identical rows."""
    server, _, _ = estate
    out, _, _ = discovered
    vc = _vc(server)
    si = vsphere.connect(vc)
    try:
        docs = vsphere.collect_vm_documents(si, vcenter=vc.label, page_size=7)
    finally:
        vsphere.disconnect(si)
    text = json.dumps({"VirtualMachines": docs}, default=json_default)
    from_file = normalise([("vm-info.json", json.loads(text))], mapping=MAPPING, discovered_at=NOW)
    assert from_file.errors == []
    assert from_file.vms == out.vms
    assert from_file.snapshots == out.snapshots
    assert {d["Config"]["Name"] for d in docs if d["Config"]["Template"]} == {
        t["name"] for t in out.facts["templates"]
    }
    assert all(
        set(d) >= {"Self", "Config", "Runtime", "Guest", "CustomValue", "AvailableField"} for d in docs
    )


def test_dead_vcenter_is_recorded_and_the_other_counts(estate):
    server, pop, _ = estate
    dead = free_port()
    config = vsphere.VsphereConfig(
        vcenters=[_vc(server, port=dead, password=PASSWORD), _vc(server)], page_size=50
    )
    messages: list[str] = []
    out = vsphere.discover(config, mapping=MAPPING, discovered_at=NOW, progress=messages.append)
    assert out.failed_scopes == [
        {
            "scope": f"vsphere:127.0.0.1:{dead}",
            "reason": f"cannot connect to vCenter 127.0.0.1:{dead}: connection refused",
        }
    ]
    assert len(out.vms) == len([n for n in pop.attributes if n not in pop.templates])
    assert {r["account"] for r in out.vms} == {f"127.0.0.1:{server.port}"}
    assert any("FAILED" in m for m in messages)
    assert not any(PASSWORD in m for m in messages)


def test_bad_credentials_name_the_vcenter_not_the_password():
    with start_vcsim(vms=2, extra_args=["-username", "svc-qlrf", "-password", "right-one"]) as server:
        ok = vsphere.discover(
            vsphere.VsphereConfig(vcenters=[_vc(server, user="svc-qlrf", password="right-one")]),
            mapping=MAPPING,
            discovered_at=NOW,
        )
        assert ok.failed_scopes == [] and len(ok.vms) == 2
        bad = vsphere.discover(
            vsphere.VsphereConfig(vcenters=[_vc(server, user="svc-qlrf", password=PASSWORD)]),
            mapping=MAPPING,
            discovered_at=NOW,
        )
    label = f"127.0.0.1:{server.port}"
    assert bad.vms == []
    assert bad.failed_scopes == [
        {
            "scope": f"vsphere:{label}",
            "reason": f"login to vCenter {label} as 'svc-qlrf' failed: invalid user name or password",
        }
    ]
    missing = vsphere.discover(
        vsphere.VsphereConfig(vcenters=[_vc(server, password=None)]), mapping=MAPPING, discovered_at=NOW
    )
    assert "no password" in missing.failed_scopes[0]["reason"] and label in missing.failed_scopes[0]["reason"]


def test_tls_verification_failure_is_clear():
    """pyVmomi skips verification for 127.0.0.1/localhost without a context: bind 127.0.0.2."""
    with start_vcsim(vms=2, host="127.0.0.2") as server:
        assert server.host == "127.0.0.2" and server.tls
        out = vsphere.discover(
            vsphere.VsphereConfig(vcenters=[_vc(server, verify_tls=True, password=PASSWORD)]),
            mapping=MAPPING,
            discovered_at=NOW,
        )
    assert out.vms == [] and len(out.failed_scopes) == 1
    failed = out.failed_scopes[0]
    assert failed["scope"] == f"vsphere:127.0.0.2:{server.port}"
    assert failed["reason"].startswith(
        f"TLS certificate verification failed for vCenter 127.0.0.2:{server.port}"
    )
    assert "QLRF_VSPHERE_CA_FILE" in failed["reason"] and PASSWORD not in failed["reason"]


def test_tls_verified_with_ca_file(estate, tmp_path, monkeypatch):
    """verify_tls with the simulator's certificate as CA (its SAN is 127.0.0.1) succeeds, even on 127.0.0.1."""
    server, _, _ = estate
    ca = tmp_path / "vcsim-ca.pem"
    ca.write_text(ssl.get_server_certificate((server.host, server.port)))
    # Go's httptest certificate (which vcsim serves) has a 1024-bit RSA key, below OpenSSL's default
    # security level ("EE certificate key too weak"); allow it here only. Chain and name are still checked.
    real_context = vsphere.sessions._ssl_context

    def lab_context(vc):
        ctx = real_context(vc)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=1")
        return ctx

    monkeypatch.setattr(vsphere.sessions, "_ssl_context", lab_context)
    out = vsphere.discover(
        vsphere.VsphereConfig(vcenters=[_vc(server, verify_tls=True, ca_file=str(ca))]),
        mapping=MAPPING,
        discovered_at=NOW,
    )
    assert out.failed_scopes == [] and out.vms
    wrong = tmp_path / "other-ca.pem"
    wrong.write_text("not a certificate\n")
    out = vsphere.discover(
        vsphere.VsphereConfig(vcenters=[_vc(server, verify_tls=True, ca_file=str(wrong))]),
        mapping=MAPPING,
        discovered_at=NOW,
    )
    assert out.vms == [] and "cannot load CA file" in out.failed_scopes[0]["reason"]


def test_plain_http_and_config_from_env():
    with start_vcsim(vms=4, datacenters=1, clusters=2, tls=False) as server:
        env = {
            "QLRF_VSPHERE_HOSTS": f" http://127.0.0.1:{server.port}/sdk ",
            "QLRF_VSPHERE_USER": "u",
            "QLRF_VSPHERE_PASSWORD": PASSWORD,
            "QLRF_VSPHERE_PAGE_SIZE": "3",
        }
        config = vsphere.config_from_env(env)
        stats: list[vsphere.VcenterStats] = []
        out = vsphere.discover(config, mapping=MAPPING, discovered_at=NOW, stats=stats)
    assert out.failed_scopes == [] and len(out.vms) == 4 and stats[0].pages == 2
    assert {r["zone"] for r in out.vms} == {"DC0_C0", "DC0_C1"}
    assert PASSWORD not in repr(config)


def test_config_from_env_parsing():
    config = vsphere.config_from_env(
        {
            "QLRF_VSPHERE_HOSTS": "vc01.acme.local, vc02.acme.local:8443,[fd00::5]:444,http://lab:8080",
            "QLRF_VSPHERE_USER": "svc@vsphere.local",
            "QLRF_VSPHERE_PASSWORD": PASSWORD,
            "QLRF_VSPHERE_INSECURE": "1",
            "QLRF_VSPHERE_CA_FILE": "/etc/ssl/vc.pem",
            "QLRF_VSPHERE_PAGE_SIZE": "250",
        }
    )
    assert [(v.protocol, v.host, v.port, v.label) for v in config.vcenters] == [
        ("https", "vc01.acme.local", 443, "vc01.acme.local"),
        ("https", "vc02.acme.local", 8443, "vc02.acme.local:8443"),
        ("https", "fd00::5", 444, "[fd00::5]:444"),
        ("http", "lab", 8080, "lab:8080"),
    ]
    assert all(not v.verify_tls and v.ca_file == "/etc/ssl/vc.pem" for v in config.vcenters)
    assert config.page_size == 250 and config.vcenters[0].scope == "vsphere:vc01.acme.local"
    assert vsphere.config_from_env({}).vcenters == []
    assert vsphere.config_from_env({"QLRF_VSPHERE_HOSTS": "vc"}).vcenters[0].verify_tls is True
    with pytest.raises(ValueError, match="QLRF_VSPHERE_PAGE_SIZE"):
        vsphere.config_from_env({"QLRF_VSPHERE_PAGE_SIZE": "0"})
    with pytest.raises(ValueError, match="QLRF_VSPHERE_HOSTS"):
        vsphere.discover(vsphere.VsphereConfig(), mapping=MAPPING, discovered_at=NOW)


def test_resource_reads_env_at_call_time(estate, monkeypatch):
    from dagster import EnvVar, asset, materialize

    server, pop, _ = estate
    monkeypatch.setenv("QLRF_VSPHERE_HOSTS", f"127.0.0.1:{server.port}")
    monkeypatch.setenv("QLRF_VSPHERE_USER", "u")
    monkeypatch.setenv("QLRF_VSPHERE_PASSWORD", PASSWORD)
    monkeypatch.setenv("QLRF_VSPHERE_INSECURE", "1")
    n_vms = len([n for n in pop.attributes if n not in pop.templates])
    out = VsphereResource().discover(NOW, MAPPING)
    assert out.failed_scopes == [] and len(out.vms) == n_vms
    # Explicit fields win over the environment (and verification is real even on 127.0.0.1).
    out = VsphereResource(verify_tls=True, page_size=4).discover(NOW, MAPPING)
    assert out.vms == [] and "TLS certificate verification failed" in out.failed_scopes[0]["reason"]

    # In a Dagster run, with the password bound through EnvVar as pipelines/definitions.py should.
    @asset
    def vsphere_probe(vsphere: VsphereResource) -> int:
        found = vsphere.discover(NOW, MAPPING)
        assert found.failed_scopes == []
        return len(found.vms)

    result = materialize(
        [vsphere_probe], resources={"vsphere": VsphereResource(password=EnvVar("QLRF_VSPHERE_PASSWORD"))}
    )
    assert result.success and result.output_for_node("vsphere_probe") == n_vms
