"""Scope planning for the discovery fan-out (qlrf/inventory/scopes.py): pure, no Dagster, no network."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qlrf.inventory import scopes as plan
from qlrf.inventory.columnar import Discovered
from qlrf.inventory.connectors.aws.config import AwsConfig
from qlrf.inventory.connectors.azure.config import AzureConfig
from qlrf.inventory.connectors.gcp.config import GcpConfig
from qlrf.inventory.connectors.vsphere.config import VcenterConfig, VsphereConfig
from qlrf.inventory.contract import Normalised
from qlrf.tenancy import model as tenancy

AT = datetime(2026, 11, 27, 6, tzinfo=UTC)
ARN = "arn:aws:iam::{}:role/qlrf"


def test_aws_plans_default_first_then_roles_in_account_order_without_repeats():
    config = AwsConfig(role_arns=[ARN.format("300000000003"), ARN.format("100000000001"), ARN.format("300000000003")])
    keys = [s.key for s in plan.live_scopes("aws", config)]
    assert keys == ["default", ARN.format("100000000001"), ARN.format("300000000003")]
    assert {s.kind for s in plan.live_scopes("aws", config)} == {"account"}
    config.include_default = False
    assert [s.name for s in plan.live_scopes("aws", config)][0] == "aws:" + ARN.format("100000000001")


def test_azure_gcp_vsphere_plan_in_the_connectors_merge_order():
    azure = AzureConfig(subscriptions=["sub-B", " sub-a ", "", "sub-B"])
    assert [s.key for s in plan.live_scopes("azure", azure)] == ["sub-a", "sub-B"]  # case-insensitive, as _assemble
    gcp = GcpConfig(projects=["p2", "p1", "p2"])
    assert [s.key for s in plan.live_scopes("gcp", gcp)] == ["p1", "p2"]
    vsphere = VsphereConfig(vcenters=[VcenterConfig("vc2.example"), VcenterConfig("vc1.example", port=8443)])
    assert [s.key for s in plan.live_scopes("vsphere", vsphere)] == ["vc2.example", "vc1.example:8443"]  # config order


def test_a_platform_without_a_scope_unit_is_one_whole_scope_and_an_empty_config_is_refused():
    assert plan.live_scopes("oci", None) == [plan.Scope("oci", "whole", "*")]
    with pytest.raises(ValueError, match="gcp discovery names no projects"):
        plan.live_scopes("gcp", GcpConfig(projects=[" "]))


def test_manifest_scopes_keep_plain_files_together_then_one_per_hinted_file():
    files = [
        {"path": "aws-1-instances.json"},
        {"path": "vc-a.json", "account": "vc1", "region": "dc1"},
        {"path": "aws-snapshots.json"},
        {"path": "vc-b.json", "account": "vc2"},
    ]
    scopes = plan.manifest_scopes("aws", files)
    assert [(s.key, [f["path"] for f in s.files]) for s in scopes] == [
        ("files", ["aws-1-instances.json", "aws-snapshots.json"]),
        ("vc1/dc1", ["vc-a.json"]),
        ("vc2", ["vc-b.json"]),
    ]


@pytest.mark.parametrize(("per_step", "sizes"), [(1, [1] * 5), (2, [2, 2, 1]), (5, [5]), (9, [5]), (0, [5])])
def test_batches_are_consecutive_bounded_and_agree_on_source_and_time(per_step, sizes):
    scopes = [plan.Scope("gcp", "project", f"p{i}") for i in range(5)]
    found = plan.batches(scopes, per_step, source="live", discovered_at=AT)
    assert [len(b.scopes) for b in found] == sizes
    assert [s for b in found for s in b.scopes] == scopes
    assert [b.index for b in found] == list(range(len(sizes)))
    assert {(b.source, b.discovered_at, b.total) for b in found} == {("live", AT, len(sizes))}
    assert len({b.key for b in found}) == len(found) and all(k.replace("_", "").isalnum() for k in (b.key for b in found))
    assert plan.batches([], 3, source="live", discovered_at=AT) == []


def test_scopes_per_step_setting():
    assert plan.scopes_per_step(None) == plan.DEFAULT_SCOPES_PER_STEP
    assert plan.scopes_per_step(" 7 ") == 7 and plan.scopes_per_step("0") == 0
    for bad in ("seven", "-1"):
        with pytest.raises(ValueError, match="QLRF_SCOPES_PER_STEP"):
            plan.scopes_per_step(bad)


def test_narrow_keeps_only_the_batch_and_every_other_setting():
    aws = AwsConfig(role_arns=[ARN.format("1" * 12), ARN.format("2" * 12)], max_workers=3, regions=["eu-west-1"])
    one = plan.narrow("aws", aws, [plan.Scope("aws", "account", ARN.format("2" * 12))])
    assert (one.role_arns, one.include_default, one.max_workers, one.regions) == ([ARN.format("2" * 12)], False, 3, ["eu-west-1"])
    default = plan.narrow("aws", aws, [plan.Scope("aws", "account", "default")])
    assert (default.role_arns, default.include_default) == ([], True)
    assert aws.role_arns == [ARN.format("1" * 12), ARN.format("2" * 12)]  # the original is untouched
    vs = VsphereConfig(vcenters=[VcenterConfig("a"), VcenterConfig("b", password="pw")])
    assert [vc.label for vc in plan.narrow("vsphere", vs, [plan.Scope("vsphere", "vcenter", "b")]).vcenters] == ["b"]
    assert plan.narrow("azure", AzureConfig(subscriptions=["x", "y"]), [plan.Scope("azure", "subscription", "y")]).subscriptions == ["y"]
    with pytest.raises(ValueError, match="oci"):  # not a registered platform: the registry names the known ones
        plan.narrow("oci", object(), [])


def vm_row(asset_id: str) -> dict:
    """The contract's required fields (Discovered types rows by the inventory contract)."""
    return {"asset_id": asset_id, "platform": "aws", "account": "111111111111", "region": "eu-west-1",
            "name": asset_id, "state": "running", "discovered_at": AT}


def _part(ids: list[str], images: list[str] = (), failed: list[str] = ()) -> Discovered:
    out = Normalised()
    for n, i in enumerate(ids):
        out.add_vm(vm_row(asset_id=i), "src", n)
    out.facts["images"] = [{"image_id": im} for im in images]
    out.failed_scopes = [{"scope": f, "reason": f"{f}: down"} for f in failed]
    return Discovered.of(out, tenancy.current())


def test_merge_orders_by_plan_rejects_duplicates_once_and_sorts_failures():
    merged = plan.merge("aws", [(1, _part(["c", "a"], ["ami-1"], ["aws:z"])), (0, _part(["b", "a"], ["ami-1"], ["aws:m"]))])
    assert merged.vms["asset_id"].to_pylist() == ["b", "a", "c"]
    assert merged.origins["index"].to_pylist() == [0, 1, 0]  # still parallel to the rows
    assert len(merged.errors) == 1 and str(merged.errors[0]) == "src record #1 (a): duplicate asset id a: first seen at src record #1"
    assert [f["scope"] for f in merged.failed_scopes] == ["aws:m", "aws:z"]
    assert [r["image_id"] for r in merged.facts["images"]] == ["ami-1", "ami-1"]  # AWS lists per account x region


def test_merge_lists_an_azure_image_once_across_batches():
    merged = plan.merge("azure", [(0, _part(["a"], ["/Subs/X/img"])), (1, _part(["b"], ["/subs/x/IMG", "/subs/a"]))])
    assert [r["image_id"] for r in merged.facts["images"]] == ["/subs/a", "/Subs/X/img"]


def test_a_raising_batch_names_every_scope_and_masks_credentials():
    batch = plan.batches([plan.Scope("azure", "subscription", s) for s in ("s1", "s2")], 0, source="live", discovered_at=AT)[0]
    out = plan.failed_batch(batch, RuntimeError("token rejected: Authorization: Bearer eyJhbGciOi.secret.sig\n  retry"),
                            tenancy.current())
    assert [f["scope"] for f in out.failed_scopes] == ["azure:s1", "azure:s2"]
    assert all("RuntimeError: token rejected" in f["reason"] and "eyJhbGciOi" not in f["reason"] for f in out.failed_scopes)
    assert not out.vms.num_rows


def test_a_fifth_platform_whose_connector_says_nothing_is_one_whole_scope():
    from qlrf.platforms import REGISTRY
    from tests.platforms.test_registry import OCI

    registry = REGISTRY.extended(OCI)  # its connector (tests.platforms.fake_oci) has no config module
    assert plan.scope_module("oci", registry) is None
    assert plan.live_scopes("oci", object(), registry) == [plan.Scope("oci", "whole", "*")]
    assert plan.scope_module("gcp").SCOPE_KIND == "project"  # the built-in ones say, through the same registry


def test_a_manifest_without_files_for_the_platform_plans_one_whole_scope(tmp_path):
    """No scopes would mean no steps and a silently skipped partition; one whole scope finds nothing
    and fails the partition with "no VMs discovered", as serial discovery did."""
    import json

    from resources.discovery import DiscoveryResource
    from resources.estate import EstateResource

    (tmp_path / "manifest.json").write_text(json.dumps({"files": {"aws": [{"path": "a.json"}]}}))
    estate = EstateResource(sources={"gcp": f"files:{tmp_path}"})
    found = DiscoveryResource().plan("gcp", day=AT.date(), discovered_at=AT, estate=estate, per_step=1)
    assert [[s.kind for s in b.scopes] for b in found] == [["whole"]]
