"""The sample estate is deterministic and realistic; `qlrf inventory normalize` reads it like any export."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import date

import pytest

from qlrf.inventory.sample import generate_estate
from qlrf.inventory.sources import from_manifest
from qlrf.inventory.tags import TagMapping

DAY = date(2026, 11, 20)
QLRF = [sys.executable, "-m", "qlrf.cli"]


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    path = tmp_path_factory.mktemp("estate")
    generate_estate(path, DAY)
    return path


def test_estate_is_large_varied_and_deterministic(estate, tmp_path):
    from datetime import UTC, datetime

    now = datetime(2026, 11, 20, tzinfo=UTC)
    rows = {p: from_manifest(estate, p, TagMapping(), now) for p in ("aws", "azure", "gcp", "vsphere")}
    assert sum(len(r.vms) for r in rows.values()) >= 10_000
    assert all(not r.errors for r in rows.values())
    vms = [v for r in rows.values() for v in r.vms]
    assert len({v["account"] for v in vms}) >= 8
    assert len({v["site"] for v in vms}) >= 6
    assert set(Counter(v["environment"] for v in vms)) == {"prod", "staging", "dev"}
    assert 0 < sum(1 for v in vms if v["site"] is None) < len(vms) * 0.05
    assert 0.03 < sum(1 for v in vms if v["owner"] is None) / len(vms) < 0.07  # 5% untagged owners
    again = tmp_path / "again"
    generate_estate(again, DAY)
    for name in ("aws-111111111111-instances.json", "gcp-disks.json", "azure-vms.json"):
        assert (again / "raw" / name).read_bytes() == (estate / "raw" / name).read_bytes()


def _run(*args):
    return subprocess.run([*QLRF, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_normalize_prints_json_lines(estate):
    files = [str(p) for p in sorted((estate / "raw").glob("gcp-*.json"))]
    proc = _run("inventory", "normalize", "--platform", "gcp", *files)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 2600
    assert all(r["platform"] == "gcp" and r["image_ref"] is None or r["image_ref"].startswith("https://") for r in rows)
    assert rows[0]["discovered_at"].endswith("Z")


@pytest.mark.slow
def test_normalize_rejects_bad_record_keeps_the_rest(tmp_path):
    doc = {"Reservations": [{"OwnerId": "1", "Instances": [
        {"InstanceId": "i-good", "Placement": {"AvailabilityZone": "eu-west-1a"}, "State": {"Name": "running"}},
        {"InstanceId": "i-bad", "State": {"Name": "running"}},
    ]}]}
    path = tmp_path / "export.json"
    path.write_text(json.dumps(doc))
    proc = _run("inventory", "normalize", "--platform", "aws", str(path))
    assert proc.returncode == 1
    assert [json.loads(x)["asset_id"] for x in proc.stdout.splitlines()] == ["i-good"]
    assert f"error: {path} record #1 (i-bad)" in proc.stderr
    assert "1 record(s) rejected" in proc.stderr


@pytest.mark.slow
def test_vsphere_normalize_needs_and_takes_datacenter(estate):
    path = next((estate / "raw").glob("vsphere-vc01-*.json"))
    proc = _run("inventory", "normalize", "--platform", "vsphere", str(path))
    assert proc.returncode == 1 and "--region DATACENTER" in proc.stderr
    proc = _run("inventory", "normalize", "--platform", "vsphere", "--account", "vc01", "--region", "dc-x", str(path))
    assert proc.returncode == 0
    assert {json.loads(x)["region"] for x in proc.stdout.splitlines()} == {"dc-x"}


@pytest.mark.slow
def test_report_without_results_says_what_to_run(isolated_env):
    import os

    proc = subprocess.run([*QLRF, "report", "--date", "2026-09-03"], capture_output=True, text=True, env=os.environ.copy())
    assert proc.returncode == 2
    assert "qlrf run --date 2026-09-03" in proc.stderr
