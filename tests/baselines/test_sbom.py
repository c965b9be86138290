"""SBOM index and "which VMs run an image with package X in range Y"."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from qlrf.baselines.sbom import PackageQuery, affected_images, image_packages, packages_from_spdx, sample_spdx


@pytest.mark.parametrize(
    ("spec", "version", "hit"),
    [
        ("openssl", "1.0.0", True),
        ("openssl@3.0.7", "3.0.7", True),
        ("openssl@3.0.7", "3.0.8", False),
        ("openssl@<3.0.10", "3.0.9", True),
        ("openssl@<3.0.10", "3.0.10", False),  # numeric, not lexical
        ("openssl@>=3.0,<3.0.8", "3.0.7", True),
        ("openssl@>=3.0,<3.0.8", "2.9.9", False),
        ("openssl@!=3.0.7", "3.0.6", True),
    ],
)
def test_package_query(spec, version, hit):
    assert PackageQuery.parse(spec).matches("openssl", version) is hit
    assert PackageQuery.parse(spec).matches("libssl", version) is False


def test_bad_query_is_named():
    with pytest.raises(ValueError, match="cannot read version clause"):
        PackageQuery.parse("openssl@~>3")


def test_spdx_parsing_and_rejection():
    pkgs = packages_from_spdx(sample_spdx("ubuntu", "1.0.0", 2), "x.json")
    openssl = next(p for p in pkgs if p["package"] == "openssl")
    assert openssl == {"package": "openssl", "package_version": "3.0.4", "purl": "pkg:generic/openssl@3.0.4", "license": "NOASSERTION"}
    with pytest.raises(ValueError, match="not an SPDX JSON document"):
        packages_from_spdx({"bomFormat": "CycloneDX"}, "cdx.json")


def _pinned_family(tmp_path, extra_versions=()):
    """Family f with version 1.0.0 whose SBOM is written under tmp_path and pinned by its hash."""
    from datetime import UTC, datetime

    from qlrf.baselines.contracts import ImageFamily

    (tmp_path / "sbom").mkdir()
    sbom = tmp_path / "sbom" / "f-1.0.0.spdx.json"
    sbom.write_text(json.dumps(sample_spdx("f", "1.0.0", 0)))
    pin = hashlib.sha256(sbom.read_bytes()).hexdigest()
    versions = [{"version": "1.0.0", "released_at": datetime(2026, 1, 1, tzinfo=UTC), "channel": "prod",
                 "sbom": "sbom/f-1.0.0.spdx.json", "sbom_sha256": pin, "images": {"vsphere": {"*": "tmpl-f-1"}}}]
    versions += [{**versions[0], **v} for v in extra_versions]
    return ImageFamily.model_validate({"family": "f", "os": "o", "versions": versions}), sbom, pin


def test_missing_sbom_is_a_problem_not_a_crash(tmp_path):
    from datetime import UTC, datetime

    fam, _sbom, _pin = _pinned_family(tmp_path, [{"version": "1.1.0", "released_at": datetime(2026, 2, 1, tzinfo=UTC),
                                                  "sbom": "sbom/missing.spdx.json", "images": {"vsphere": {"*": "tmpl-f-2"}}}])
    table, problems = image_packages(tmp_path, [fam])
    assert table.num_rows == 5 and len(problems) == 1 and "f 1.1.0" in problems[0]
    assert affected_images(table, PackageQuery.parse("openssl@3.0.2")) == [{"family": "f", "version": "1.0.0", "package_version": "3.0.2"}]


def test_an_sbom_that_does_not_match_its_signed_hash_is_not_indexed(tmp_path):
    fam, sbom, pin = _pinned_family(tmp_path)
    sbom.write_text(sbom.read_text().replace("openssl", "libressl"))  # swapped after the contract was verified
    table, problems = image_packages(tmp_path, [fam])
    assert table.num_rows == 0
    assert problems == [f"f 1.0.0: {sbom}: does not match its signed sbom_sha256 " + problems[0].split("sbom_sha256 ", 1)[1]]
    assert "contract says " + pin[:12] in problems[0]


def test_cli_answers_from_the_warehouse(materialized_day):
    from qlrf.baselines.sbom import vms_running
    from qlrf.warehouse import Warehouse

    root, day = materialized_day
    wh = Warehouse(str(root))
    old = vms_running(wh, day, PackageQuery.parse("openssl@<3.0.3")).to_pylist()
    assert old and all(r["image_version"] for r in old)
    # Every hit's image really has such an openssl, and every VM on such an image is listed.
    drift = wh.read_platforms("vm_drift", day, ["aws", "azure", "gcp", "vsphere"]).to_pylist()
    pkgs = {(r["family"], r["version"]): r["package_version"] for r in wh.read("image_packages", day).to_pylist() if r["package"] == "openssl"}
    expected = {r["asset_id"] for r in drift if r["family"] and PackageQuery.parse("openssl@<3.0.3").matches("openssl", pkgs[(r["family"], r["image_version"])])}
    assert {r["asset_id"] for r in old} == expected
    env = dict(os.environ, QLRF_WAREHOUSE=str(root))
    proc = subprocess.run([sys.executable, "-m", "qlrf.cli", "sbom", "query", "openssl@<3.0.3", "--date", day, "--json"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == len(expected)
