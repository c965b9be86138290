"""The platform registry: one record per platform, and every platform list in the code reads it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from pathlib import Path

import pytest

from qlrf.inventory.contract import PLATFORMS
from qlrf.inventory.tags import TagMapping
from qlrf.platforms import REGISTRY, Platform, Registry

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 6, tzinfo=UTC)

OCI = Platform(
    name="oci",
    display_name="Oracle Cloud",
    normaliser="tests.platforms.fake_oci:normalise",
    connector="tests.platforms.fake_oci",
    config_type="OciConfig",
    driver_kinds=("instance_pool",),
    fact_tables={"shapes": "compute_shapes"},
    scope_noun="compartment",
    image_ref_kind="image OCID",
)


def test_the_four_platforms_in_partition_order():
    assert PLATFORMS == REGISTRY.names() == ("aws", "azure", "gcp", "vsphere")
    assert {p.name: p.scope_noun for p in REGISTRY} == {
        "aws": "account/region", "azure": "subscription", "gcp": "project", "vsphere": "vCenter"
    }
    assert REGISTRY.get("vsphere").driver_kinds == ("clone_swap", "drs_clone_swap")
    assert REGISTRY.fact_tables() == {"images": "cloud_images", "scaling_groups": "scaling_groups", "templates": "cloud_images"}


def test_records_are_frozen_and_names_unique():
    with pytest.raises(FrozenInstanceError):
        REGISTRY.get("aws").name = "ec2"  # type: ignore[misc]
    with pytest.raises(TypeError):
        REGISTRY.get("aws").fact_tables["images"] = "x"  # type: ignore[index]
    with pytest.raises(ValueError, match="already registered"):
        REGISTRY.extended(REGISTRY.get("gcp"))
    with pytest.raises(ValueError, match="unknown platform 'ibm'; expected one of aws, azure, gcp, vsphere"):
        REGISTRY.get("ibm")


def test_every_record_resolves_to_real_modules():
    for record in REGISTRY:
        assert callable(record.load_normaliser())
        module = record.load_connector()
        assert callable(module.config_from_env) and callable(module.discover)
        assert record.load_config_type().__name__ == record.config_type


def test_importing_the_registry_imports_no_connector_or_sdk():
    code = "import sys, qlrf.platforms; print(sorted(m for m in sys.modules if m.startswith(('qlrf.inventory', 'boto3', 'azure', 'google', 'pyVmomi'))))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == []


def test_a_fifth_platform_is_one_record_and_its_modules():
    from assets.partitions import platform_partitions
    from qlrf.settings import Settings
    from resources.discovery import DiscoveryResource

    registry = REGISTRY.extended(OCI)
    assert registry.names()[-1] == "oci" and len(registry) == 5 and REGISTRY.names() == PLATFORMS  # the default is untouched
    assert platform_partitions(registry).get_partition_keys() == ["aws", "azure", "gcp", "vsphere", "oci"]
    settings = Settings.from_env({"QLRF_SOURCE_OCI": "live"}, platforms=registry.names())
    assert settings.sources["oci"] == "live" and settings.sources["aws"] == "sample"
    assert registry.fact_tables()["shapes"] == "compute_shapes"
    rows = registry.get("oci").load_normaliser()([("x.json", [{"name": "vm-a"}])], mapping=TagMapping(), discovered_at=NOW)
    assert [r["asset_id"] for r in rows.vms] == ["oci:vm-a"]
    # Live discovery needs no Dagster resource class of its own: the record names the connector module.
    found = DiscoveryResource().connector("oci", registry).discover(NOW, TagMapping())
    assert [v["asset_id"] for v in found.vms] == ["oci:live-1"] and found.facts["shapes"][0]["shape"] == "E4"


def test_a_built_in_platform_gets_its_typed_resource():
    from resources.discovery import DiscoveryResource
    from resources.vsphere import VsphereResource

    pinned = VsphereResource(hosts=["vc.example:443"])
    assert DiscoveryResource(vsphere=pinned).connector("vsphere") is pinned
    assert isinstance(DiscoveryResource().connector("vsphere"), VsphereResource)
    with pytest.raises(ValueError, match="unknown platform 'oci'"):
        DiscoveryResource().connector("oci")


PLATFORM_MODULES = re.compile(r"/(normalize|connectors|drivers)/|/sample\.py$|/platforms\.py$|/contracts\.py$")
# Platform code another engineer is refactoring in this wave; the lead applies the registry there.
NOT_YET = ("qlrf/remediation/", "jobs/remediation.py")


def test_no_platform_list_is_spelled_out_outside_the_platform_modules():
    """Every place that enumerates platforms reads the registry: no `"aws", "azure"` literal lists."""
    literal = re.compile(r"""["']aws["']\s*[:,]\s*[^\n]*["']azure["']""")
    offenders = []
    for folder in ("qlrf", "assets", "resources", "pipelines", "sensors", "dashboards"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if PLATFORM_MODULES.search("/" + rel) or rel.startswith(NOT_YET):
                continue
            offenders += [f"{rel}:{n}" for n, line in enumerate(path.read_text().splitlines(), 1) if literal.search(line)]
    assert offenders == []


def test_registry_is_a_plain_container():
    registry = Registry()
    registry.register(OCI)
    assert list(registry) == [OCI] and "oci" in registry and "aws" not in registry
