"""Contract tests for the Azure / GCP loopback fakes.

(a) every fixture field survives the SDK's own model parsing (no silently dropped field);
(b) end to end through the real SDK clients: paging, power state, boot disk -> image,
    throttling retried, failing subscription/project raises the SDK error;
(c) the real ``ClientSecretCredential`` gets a token from the fake.
"""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from datetime import datetime
from enum import Enum
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.mgmt.compute import models as az
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud import compute_v1

from tests.fakes.azure_fake import start_azure_fake
from tests.fakes.fixtures import azure_fixture, gcp_fixture
from tests.fakes.gcp_fake import start_gcp_fake

# ---------------------------------------------------------------------------
# (a) field survival
# ---------------------------------------------------------------------------

AZURE_MODELS = {
    "virtualMachines": az.VirtualMachine,
    "virtualMachineScaleSets": az.VirtualMachineScaleSet,
    "virtualMachineScaleSetVMs": az.VirtualMachineScaleSetVM,
    "images": az.Image,
    "galleries": az.Gallery,
    "galleryImages": az.GalleryImage,
    "galleryImageVersions": az.GalleryImageVersion,
    "disks": az.Disk,
    "snapshots": az.Snapshot,
}
GCP_MODELS = {
    "instances": compute_v1.Instance,
    "disks": compute_v1.Disk,
    "images": compute_v1.Image,
    "snapshots": compute_v1.Snapshot,
    "instanceGroupManagers": compute_v1.InstanceGroupManager,
}
_FRACTION = re.compile(r"(\.\d{6})\d+")


def _is_az_model(obj: Any) -> bool:
    return hasattr(type(obj), "_attr_to_rest_field")


def azure_dropped_paths(model: Any, data: dict[str, Any], path: str = "$") -> list[str]:
    """Walk raw ARM JSON against the parsed azure-mgmt-compute model.

    azure-mgmt-compute >= 38 models are dict-backed (``_utils.model_base.Model``): they keep
    unknown JSON keys in the mapping, and ``as_dict()`` returns them too, so a plain round trip
    can never detect a misspelled field.  Instead every JSON key must map to a declared
    ``rest_field`` and the typed attribute must give the JSON value back.
    """
    problems: list[str] = []
    rest_to_attr = {rf._rest_name: attr for attr, rf in type(model)._attr_to_rest_field.items()}
    for key, raw in data.items():
        p = f"{path}.{key}"
        attr = rest_to_attr.get(key)
        if attr is None:
            problems.append(f"{p}: not a field of {type(model).__name__}")
            continue
        problems += _az_compare(getattr(model, attr), raw, p)
    return problems


def _az_compare(val: Any, raw: Any, p: str) -> list[str]:
    if raw is None:
        return [] if val is None else [f"{p}: expected null, got {val!r}"]
    if val is None:
        return [f"{p}: dropped (SDK attribute is None)"]
    if isinstance(raw, dict):
        if _is_az_model(val):
            return azure_dropped_paths(val, raw, p)
        if isinstance(val, dict):
            out = [f"{p}.{k}: dropped" for k in raw if k not in val]
            for k in raw:
                if k in val:
                    out += _az_compare(val[k], raw[k], f"{p}.{k}")
            return out
        return [f"{p}: expected object, got {type(val).__name__}"]
    if isinstance(raw, list):
        if not isinstance(val, list) or len(val) != len(raw):
            return [f"{p}: list mismatch {val!r} != {raw!r}"]
        out: list[str] = []
        for i, (v, r) in enumerate(zip(val, raw, strict=True)):
            out += _az_compare(v, r, f"{p}[{i}]")
        return out
    if isinstance(val, datetime):
        want = datetime.fromisoformat(_FRACTION.sub(r"\1", raw))
        return [] if val == want else [f"{p}: datetime {val!r} != {raw!r}"]
    if isinstance(val, Enum):
        val = val.value
    return [] if val == raw else [f"{p}: {val!r} != {raw!r}"]


def gcp_dropped_paths(raw: Any, parsed: Any, path: str = "$") -> list[str]:
    """Diff the fixture JSON against ``to_json`` of the strictly parsed proto message."""
    if isinstance(raw, dict):
        if not isinstance(parsed, dict):
            return [f"{path}: expected object"]
        out = [f"{path}.{k}: dropped" for k in raw if k not in parsed]
        for k in raw:
            if k in parsed:
                out += gcp_dropped_paths(raw[k], parsed[k], f"{path}.{k}")
        return out
    if isinstance(raw, list):
        if not isinstance(parsed, list) or len(parsed) != len(raw):
            return [f"{path}: list mismatch"]
        out = []
        for i, (r, v) in enumerate(zip(raw, parsed, strict=True)):
            out += gcp_dropped_paths(r, v, f"{path}[{i}]")
        return out
    return [] if raw == parsed else [f"{path}: {parsed!r} != {raw!r}"]


def _gcp_roundtrip(cls: Any, item: dict[str, Any]) -> dict[str, Any]:
    # ignore_unknown_fields=False (the default): a misspelled field raises ParseError here,
    # whereas the REST transport parses with ignore_unknown_fields=True and drops it silently.
    msg = cls.from_json(json.dumps(item))
    return json.loads(cls.to_json(msg, use_integers_for_enums=False))


@pytest.fixture(scope="module")
def az_fx() -> dict[str, Any]:
    return azure_fixture(subscriptions=3, vms_per_sub=20, failing_subscriptions=1)


@pytest.fixture(scope="module")
def gcp_fx() -> dict[str, Any]:
    return gcp_fixture(projects=3, instances_per_project=20, failing_projects=1)


def test_fixtures_are_deterministic() -> None:
    assert azure_fixture(seed=7) == azure_fixture(seed=7)
    assert gcp_fixture(seed=7) == gcp_fixture(seed=7)
    assert azure_fixture(seed=7) != azure_fixture(seed=8)


def test_azure_fixture_fields_survive_sdk_models(az_fx: dict[str, Any]) -> None:
    problems: list[str] = []
    seen = dict.fromkeys(AZURE_MODELS, 0)
    for sub, data in az_fx["subscriptions"].items():
        for key, cls in AZURE_MODELS.items():
            for item in data[key]:
                seen[key] += 1
                problems += azure_dropped_paths(cls(item), item, f"{sub[:8]}:{key}:{item['name']}")
    assert not problems, "\n".join(problems[:50])
    assert all(seen.values()), seen


def test_azure_walker_catches_misspelled_field(az_fx: dict[str, Any]) -> None:
    vm = json.loads(json.dumps(next(iter(az_fx["subscriptions"].values()))["virtualMachines"][0]))
    vm["properties"]["hardwareProfiel"] = {"vmSize": "Standard_D2s_v5"}
    vm["properties"]["storageProfile"]["imageReference"]["exactversion"] = "1"
    problems = azure_dropped_paths(az.VirtualMachine(vm), vm)
    assert any("hardwareProfiel" in p for p in problems)
    assert any("exactversion" in p for p in problems)


def test_gcp_fixture_fields_survive_sdk_models(gcp_fx: dict[str, Any]) -> None:
    problems: list[str] = []
    seen = dict.fromkeys(GCP_MODELS, 0)
    for pid, data in gcp_fx["projects"].items():
        for key, cls in GCP_MODELS.items():
            for item in data[key]:
                seen[key] += 1
                problems += gcp_dropped_paths(item, _gcp_roundtrip(cls, item), f"{pid}:{key}:{item['name']}")
    assert not problems, "\n".join(problems[:50])
    assert all(seen.values()), seen


def test_gcp_strict_parse_catches_misspelled_field(gcp_fx: dict[str, Any]) -> None:
    from google.protobuf.json_format import ParseError

    inst = dict(gcp_fx["projects"][gcp_fx["workload_projects"][0]]["instances"][0])
    inst["machine_type"] = inst.pop("machineType")  # proto name is accepted by the parser ...
    assert _gcp_roundtrip(compute_v1.Instance, inst)["machineType"]
    inst["machineTyp"] = "x"  # ... a typo is not
    with pytest.raises(ParseError):
        compute_v1.Instance.from_json(json.dumps(inst))


def test_gcp_served_envelopes_parse_strictly(gcp_fx: dict[str, Any]) -> None:
    """The list/aggregated envelopes the fake writes are valid for the SDK's response types."""
    pid = gcp_fx["workload_projects"][0]
    envelopes = {
        "aggregated/instances?maxResults=5": compute_v1.InstanceAggregatedList,
        "aggregated/disks?maxResults=5": compute_v1.DiskAggregatedList,
        "aggregated/instanceGroupManagers": compute_v1.InstanceGroupManagerAggregatedList,
        "global/images": compute_v1.ImageList,
        "global/snapshots?maxResults=3": compute_v1.SnapshotList,
        "zones/europe-west4-a/instances": compute_v1.InstanceList,
    }
    with start_gcp_fake(gcp_fx) as fake:
        for suffix, cls in envelopes.items():
            with urllib.request.urlopen(f"{fake.base_url}/compute/v1/projects/{pid}/{suffix}") as resp:
                raw = json.loads(resp.read())
            problems = gcp_dropped_paths(raw, _gcp_roundtrip(cls, raw), suffix)
            assert not problems, problems[:10]
        # empty zones carry the GCE warning block
        with urllib.request.urlopen(
            f"{fake.base_url}/compute/v1/projects/{pid}/aggregated/instances"
        ) as resp:
            items = json.loads(resp.read())["items"]
        warnings = [v["warning"] for v in items.values() if "warning" in v]
        assert warnings and all(w["code"] == "NO_RESULTS_ON_PAGE" for w in warnings)


# ---------------------------------------------------------------------------
# (b) Azure end to end through azure-mgmt-compute
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def az_fake(az_fx: dict[str, Any]):
    with start_azure_fake(az_fx, page_size=7) as fake:
        yield fake


def _healthy_subs(fx: dict[str, Any]) -> list[str]:
    return [s for s in fx["subscriptions"] if s not in fx["faults"]["fail"]]


def _power_state(vm: Any) -> str | None:
    statuses = (vm.properties.instance_view.statuses or []) if vm.properties.instance_view else []
    return next(
        (s.code.split("/", 1)[1] for s in statuses if s.code and s.code.startswith("PowerState/")), None
    )


def test_azure_list_all_vms_across_pages_with_power_state(az_fake, az_fx) -> None:
    az_fake.clear_requests()
    for sub in _healthy_subs(az_fx):
        client = az_fake.compute_client(sub)
        vms = list(client.virtual_machines.list_all(status_only="true"))
        expected = az_fx["subscriptions"][sub]["virtualMachines"]
        assert [vm.id for vm in vms] == [e["id"] for e in expected]
        assert {vm.properties.vm_id for vm in vms} == {e["properties"]["vmId"] for e in expected}
        want = {
            e["id"]: e["properties"]["instanceView"]["statuses"][1]["code"].split("/")[1] for e in expected
        }
        assert {vm.id: _power_state(vm) for vm in vms} == want
        # the normal listing carries no instanceView
        assert all(vm.properties.instance_view is None for vm in client.virtual_machines.list_all())
    vm_calls = [r for r in az_fake.requests if r.path.endswith("/virtualMachines")]
    assert len(vm_calls) > 2 * len(_healthy_subs(az_fx)), "expected several pages per subscription"
    assert all(r.param("api-version") and r.status == 200 for r in vm_calls)
    assert any("$skiptoken" in r.query for r in vm_calls)


def test_azure_status_only_trimmed_still_gives_power_state(az_fx) -> None:
    sub = _healthy_subs(az_fx)[1]
    with start_azure_fake(az_fx, status_only_trims=True) as fake:
        vms = list(fake.compute_client(sub).virtual_machines.list_all(status_only="true"))
    assert vms and all(_power_state(vm) for vm in vms)
    assert all(vm.properties.storage_profile is None for vm in vms)


def test_azure_images_galleries_snapshots_and_disk_links(az_fake, az_fx) -> None:
    image_sub = az_fx["image_subscription"]
    client = az_fake.compute_client(image_sub)
    versions: set[str] = set()
    for gallery in client.galleries.list():
        rg = gallery.id.split("/")[4]
        for image in client.gallery_images.list_by_gallery(rg, gallery.name):
            assert image.properties.identifier.publisher == "ResilienceFabric"
            for v in client.gallery_image_versions.list_by_gallery_image(rg, gallery.name, image.name):
                assert v.properties.publishing_profile.published_date is not None
                versions.add(v.id.lower())
    managed_images = {
        i.id.lower() for s in _healthy_subs(az_fx) for i in az_fake.compute_client(s).images.list()
    }
    definitions = {v.rsplit("/versions/", 1)[0] for v in versions}

    kinds = {"marketplace": 0, "gallery_version": 0, "gallery_latest": 0, "managed_image": 0}
    linked = 0
    for sub in _healthy_subs(az_fx):
        c = az_fake.compute_client(sub)
        disks = {d.id.lower(): d for d in c.disks.list()}
        snaps_by_disk: dict[str, list[Any]] = {}
        for snap in c.snapshots.list():
            snaps_by_disk.setdefault(snap.properties.creation_data.source_resource_id.lower(), []).append(
                snap
            )
        for vm in c.virtual_machines.list_all():
            ref = vm.properties.storage_profile.image_reference
            if ref.publisher:
                assert ref.exact_version
                kinds["marketplace"] += 1
            elif ref.id.lower() in versions:
                kinds["gallery_version"] += 1
            elif ref.id.lower() in definitions:
                kinds["gallery_latest"] += 1
            else:
                assert ref.id.lower() in managed_images, ref.id
                kinds["managed_image"] += 1
            disk_id = vm.properties.storage_profile.os_disk.managed_disk.id
            # ARM ids are case-insensitive and their casing differs between resources
            assert disk_id not in {d.id for d in disks.values()}
            assert disk_id.lower() in disks
            linked += len(snaps_by_disk.get(disk_id.lower(), []))
    assert all(kinds.values()), kinds
    assert linked > 0


def test_azure_vmss_flex_and_uniform(az_fake, az_fx) -> None:
    sub = _healthy_subs(az_fx)[0]
    c = az_fake.compute_client(sub)
    sets = list(c.virtual_machine_scale_sets.list_all())
    uniform = [s for s in sets if s.properties.orchestration_mode == "Uniform"]
    flex = [s for s in sets if s.properties.orchestration_mode == "Flexible"]
    assert uniform and flex
    members = list(c.virtual_machines.list_all(filter=f"'virtualMachineScaleSet/id' eq '{flex[0].id}'"))
    assert members and all(m.properties.virtual_machine_scale_set.id == flex[0].id for m in members)
    rg = uniform[0].id.split("/")[4]
    inst = list(c.virtual_machine_scale_set_vms.list(rg, uniform[0].name, expand="instanceView"))
    assert len(inst) == uniform[0].sku.capacity
    assert all(i.instance_id and i.properties.vm_id and _power_state(i) for i in inst)
    uniform_ids = {i.id for i in inst}
    assert not uniform_ids & {vm.id for vm in c.virtual_machines.list_all()}


def test_azure_throttling_is_retried(az_fake, az_fx) -> None:
    sub = _healthy_subs(az_fx)[0]
    az_fake.clear_requests()
    az_fake.throttle(sub, times=2, retry_after=0)
    client = az_fake.compute_client(sub, retry_total=3, retry_backoff_factor=0)
    vms = list(client.virtual_machines.list_all())
    assert len(vms) == len(az_fx["subscriptions"][sub]["virtualMachines"])
    assert [r.status for r in az_fake.requests[:3]] == [429, 429, 200]

    az_fake.throttle(sub, times=1)
    with pytest.raises(HttpResponseError) as err:
        list(az_fake.compute_client(sub).virtual_machines.list_all())  # retry_total=0
    assert err.value.status_code == 429
    assert err.value.error.code == "OperationNotAllowed"
    assert err.value.response.headers["Retry-After"] == "0"


def test_azure_failing_subscription_raises_sdk_error(az_fake, az_fx) -> None:
    bad = next(iter(az_fx["faults"]["fail"]))
    with pytest.raises(HttpResponseError) as err:
        list(az_fake.compute_client(bad).virtual_machines.list_all(status_only="true"))
    assert err.value.status_code == 403
    assert err.value.error.code == "AuthorizationFailed"
    assert "does not have authorization to perform action 'Microsoft.Compute/virtualMachines/read'" in str(
        err.value
    )

    az_fake.fail(bad, "SubscriptionNotFound")
    try:
        with pytest.raises(ResourceNotFoundError, match="could not be found"):
            list(az_fake.compute_client(bad).snapshots.list())
    finally:
        az_fake.fail(bad, "AuthorizationFailed")

    with pytest.raises(ResourceNotFoundError, match="ResourceNotFound"):
        az_fake.compute_client(_healthy_subs(az_fx)[0]).virtual_machines.get("rg-app-weu", "no-such-vm")


def test_azure_fake_rejects_missing_api_version_and_token(az_fake, az_fx) -> None:
    ctx = ssl.create_default_context(cafile=az_fake.ca_path)
    url = f"{az_fake.base_url}/subscriptions/{_healthy_subs(az_fx)[0]}/providers/Microsoft.Compute/virtualMachines"
    req = urllib.request.Request(url, headers={"Authorization": "Bearer x"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, context=ctx)
    assert err.value.code == 400
    assert json.loads(err.value.read())["error"]["code"] == "MissingApiVersionParameter"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url + "?api-version=2026-04-01", context=ctx)
    assert err.value.code == 401


# ---------------------------------------------------------------------------
# (c) real ClientSecretCredential
# ---------------------------------------------------------------------------


def test_client_secret_credential_gets_token_from_fake(az_fake, az_fx) -> None:
    cred = az_fake.client_secret_credential()
    token = cred.get_token("https://management.azure.com/.default")
    assert token.token in az_fake.issued_tokens and token.expires_on > 0
    sub = _healthy_subs(az_fx)[0]
    az_fake.clear_requests()
    assert list(az_fake.compute_client(sub, cred).virtual_machines.list_all())
    assert {r.authorization for r in az_fake.requests} == {f"Bearer {token.token}"}

    wrong = az_fake.client_secret_credential(client_secret="not-the-secret")
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        wrong.get_token("https://management.azure.com/.default")


# ---------------------------------------------------------------------------
# (b) GCP end to end through google-cloud-compute (REST transport)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gcp_fake(gcp_fx: dict[str, Any]):
    with start_gcp_fake(gcp_fx) as fake:
        yield fake


def _healthy_projects(fx: dict[str, Any]) -> list[str]:
    return [p for p in fx["workload_projects"] if p not in fx["faults"]["fail"]]


def test_gcp_aggregated_instances_across_pages(gcp_fake, gcp_fx) -> None:
    client = gcp_fake.instances_client()
    gcp_fake.clear_requests()
    for pid in _healthy_projects(gcp_fx):
        req = compute_v1.AggregatedListInstancesRequest(project=pid, max_results=6)
        got = [
            (scope, inst)
            for scope, scoped in client.aggregated_list(request=req)
            for inst in scoped.instances
        ]
        expected = gcp_fx["projects"][pid]["instances"]
        assert sorted(i.id for _, i in got) == sorted(int(e["id"]) for e in expected)
        assert all(scope == "zones/" + i.zone.rsplit("/", 1)[1] for scope, i in got)
        statuses = {i.name: i.status for _, i in got}
        assert statuses == {e["name"]: e["status"] for e in expected}
    pages = [r for r in gcp_fake.requests if r.path.endswith("/aggregated/instances")]
    assert len(pages) >= 4 * len(_healthy_projects(gcp_fx))
    assert any("pageToken" in r.query for r in pages)


def test_gcp_boot_disk_to_source_image(gcp_fake, gcp_fx) -> None:
    pid = _healthy_projects(gcp_fx)[0]
    disks, images = gcp_fake.disks_client(), gcp_fake.images_client()
    resolved, restored = 0, 0
    for _, scoped in gcp_fake.instances_client().aggregated_list(project=pid):
        for inst in scoped.instances:
            boot = next(d for d in inst.disks if d.boot)
            # .../projects/{p}/zones/{z}/disks/{d}
            _, project, _, zone, _, name = boot.source.split("/compute/v1/", 1)[1].split("/")
            disk = disks.get(project=project, zone=zone, disk=name)
            if not disk.source_image:
                assert disk.source_snapshot
                restored += 1
                continue
            img_project, img_name = re.search(
                r"projects/([^/]+)/global/images/([^/]+)$", disk.source_image
            ).groups()
            image = images.get(project=img_project, image=img_name)
            assert image.self_link == disk.source_image and str(image.id) == str(disk.source_image_id)
            resolved += 1
    assert resolved > 0
    assert restored == sum(1 for d in gcp_fx["projects"][pid]["disks"] if "sourceSnapshot" in d)
    # some project in the estate has a boot disk restored from a snapshot (no sourceImage)
    assert any(
        "sourceSnapshot" in d for p in _healthy_projects(gcp_fx) for d in gcp_fx["projects"][p]["disks"]
    )

    family = images.get_from_family(project="rf-golden-images", family="rf-debian-12-golden")
    assert family.name == "rf-debian-12-golden-v20241101"
    deprecated = [i for i in images.list(project="rf-golden-images") if i.deprecated.state]
    assert {i.deprecated.state for i in deprecated} == {"DEPRECATED", "OBSOLETE"}


def test_gcp_mig_members_and_snapshots(gcp_fake, gcp_fx) -> None:
    pid = _healthy_projects(gcp_fx)[0]
    number = gcp_fx["projects"][pid]["number"]
    igms = {
        g.self_link: g
        for _, scoped in gcp_fake.instance_group_managers_client().aggregated_list(project=pid)
        for g in scoped.instance_group_managers
    }
    assert len(igms) == 2
    members: dict[str, list[str]] = {}
    for _, scoped in gcp_fake.instances_client().aggregated_list(project=pid):
        for inst in scoped.instances:
            meta = {i.key: i.value for i in inst.metadata.items}
            if "created-by" in meta:
                # created-by uses the project *number*; map it back to the selfLink
                assert meta["created-by"].startswith(f"projects/{number}/")
                link = "https://www.googleapis.com/compute/v1/" + meta["created-by"].replace(number, pid, 1)
                members.setdefault(link, []).append(inst.self_link)
    assert set(members) == set(igms)
    regional = next(g for g in igms.values() if g.region)
    listed = gcp_fake.region_instance_group_managers_client().list_managed_instances(
        project=pid, region=regional.region.rsplit("/", 1)[1], instance_group_manager=regional.name
    )
    assert sorted(m.instance for m in listed) == sorted(members[regional.self_link])

    snaps = list(gcp_fake.snapshots_client().list(project=pid))
    assert len(snaps) == len(gcp_fx["projects"][pid]["snapshots"])
    assert all(s.source_disk and s.creation_timestamp for s in snaps)


def test_gcp_throttling(gcp_fake, gcp_fx) -> None:
    pid = _healthy_projects(gcp_fx)[1]
    client = gcp_fake.instances_client()
    expected = len(gcp_fx["projects"][pid]["instances"])

    # 503 is in the client's default retry predicate
    gcp_fake.throttle(pid, times=2, status=503)
    assert sum(len(s.instances) for _, s in client.aggregated_list(project=pid)) == expected

    # 429 is not: it surfaces unless the caller passes a retry
    gcp_fake.throttle(pid, times=1, status=429)
    with pytest.raises(gexc.TooManyRequests, match="Quota exceeded"):
        list(client.aggregated_list(project=pid))

    gcp_fake.clear_requests()
    gcp_fake.throttle(pid, times=2, status=429)
    retry = gretry.Retry(
        predicate=gretry.if_exception_type(gexc.TooManyRequests, gexc.ServiceUnavailable),
        initial=0.01,
        maximum=0.05,
        multiplier=1.0,
        timeout=10,
    )
    pager = client.aggregated_list(request={"project": pid, "max_results": 8}, retry=retry)
    assert sum(len(s.instances) for _, s in pager) == expected
    assert [r.status for r in gcp_fake.requests[:3]] == [429, 429, 200]


def test_gcp_failing_project_raises_sdk_error(gcp_fake, gcp_fx) -> None:
    bad = next(iter(gcp_fx["faults"]["fail"]))
    with pytest.raises(gexc.Forbidden) as err:
        list(gcp_fake.instances_client().aggregated_list(project=bad))
    assert "Required 'compute.instances.list' permission" in err.value.message
    assert err.value.reason == "IAM_PERMISSION_DENIED"

    gcp_fake.fail(bad, "api_disabled")
    try:
        with pytest.raises(gexc.Forbidden, match="Compute Engine API has not been used") as err:
            list(gcp_fake.snapshots_client().list(project=bad))
        assert err.value.reason == "SERVICE_DISABLED"
    finally:
        gcp_fake.fail(bad, "permission")

    with pytest.raises(gexc.NotFound):
        gcp_fake.disks_client().get(project=_healthy_projects(gcp_fx)[0], zone="europe-west4-a", disk="nope")
    with pytest.raises(gexc.BadRequest, match="less than or equal to 500"):
        list(
            gcp_fake.instances_client().aggregated_list(
                request={"project": _healthy_projects(gcp_fx)[0], "max_results": 1000}
            )
        )


# ---------------------------------------------------------------------------
# shapes the write sides create (standalone-VM drivers): they parse as strictly as the fixtures
# ---------------------------------------------------------------------------


def test_gcp_boot_disk_swap_shapes_parse_strictly() -> None:
    fx = gcp_fixture(projects=1, instances_per_project=4, zonal_mig_size=0, regional_mig_size=0, snapshot_ratio=0)
    pid = fx["workload_projects"][0]
    image = next(i for p in fx["projects"].values() for i in p["images"])["selfLink"]
    inst = fx["projects"][pid]["instances"][0]
    zone = inst["zone"].rsplit("/", 1)[1]
    with start_gcp_fake(fx) as fake:
        fake.set_operation_polls(0)
        disks, instances = fake.disks_client(), fake.instances_client()
        disks.insert(project=pid, zone=zone, disk_resource=compute_v1.Disk(name="swap-1", source_image=image, size_gb=20))
        instances.stop(project=pid, zone=zone, instance=inst["name"])
        instances.detach_disk(project=pid, zone=zone, instance=inst["name"], device_name="persistent-disk-0")
        instances.attach_disk(project=pid, zone=zone, instance=inst["name"], attached_disk_resource=compute_v1.AttachedDisk(
            source=f"projects/{pid}/zones/{zone}/disks/swap-1", boot=True, device_name="persistent-disk-0"))
        served = {"Disk": disks.get(project=pid, zone=zone, disk="swap-1"),
                  "Instance": instances.get(project=pid, zone=zone, instance=inst["name"])}
        raw_disk = next(d for d in fake.fixture["projects"][pid]["disks"] if d["name"] == "swap-1")
        raw_inst = next(i for i in fake.fixture["projects"][pid]["instances"] if i["name"] == inst["name"])
    problems = gcp_dropped_paths(raw_disk, _gcp_roundtrip(compute_v1.Disk, raw_disk), "disk")
    problems += gcp_dropped_paths(raw_inst, _gcp_roundtrip(compute_v1.Instance, raw_inst), "instance")
    assert problems == []
    assert served["Disk"].source_image == image and served["Instance"].status == "TERMINATED"
    assert [d.boot for d in served["Instance"].disks] == [True] and served["Instance"].disks[0].source.endswith("/swap-1")


def test_azure_rebuilt_vm_and_its_disk_parse_strictly() -> None:
    fx = azure_fixture(subscriptions=1, vms_per_sub=3, vmss_uniform_per_sub=0, vmss_flex_members=0, snapshot_ratio=0)
    sub = next(iter(fx["subscriptions"]))
    vm = next(v for v in fx["subscriptions"][sub]["virtualMachines"]
              if "linuxConfiguration" in v["properties"]["osProfile"])
    rg = vm["id"].split("/")[4]
    with start_azure_fake(fx) as fake:
        fake.set_operation_polls(0)
        client = fake.compute_client(sub)
        body = {"location": vm["location"], "tags": vm["tags"], "properties": {
            "hardwareProfile": vm["properties"]["hardwareProfile"], "osProfile": vm["properties"]["osProfile"],
            "networkProfile": vm["properties"]["networkProfile"],
            "storageProfile": {"imageReference": vm["properties"]["storageProfile"]["imageReference"],
                               "osDisk": {"name": "rebuilt-os", "createOption": "FromImage"}}}}
        client.virtual_machines.begin_update(rg, vm["name"], {"properties": {"storageProfile": {"osDisk": {
            "deleteOption": "Detach"}}, "networkProfile": {"networkInterfaces": [
                {**n, "properties": {"deleteOption": "Detach"}} for n in vm["properties"]["networkProfile"]["networkInterfaces"]]}}},
            polling_interval=0).result()
        client.virtual_machines.begin_delete(rg, vm["name"], polling_interval=0).result()
        made = client.virtual_machines.begin_create_or_update(rg, vm["name"], body, polling_interval=0).result()
        raw_vm = {k: v for k, v in fake.resource(vm["id"]).items()}
        raw_vm["properties"] = {k: v for k, v in raw_vm["properties"].items() if k != "instanceView"}
        raw_disk = fake.resource(made.storage_profile.os_disk.managed_disk.id)
    problems = azure_dropped_paths(az.VirtualMachine(raw_vm), raw_vm, "vm")
    problems += azure_dropped_paths(az.Disk(raw_disk), raw_disk, "disk")
    assert problems == []
    assert made.vm_id != vm["properties"]["vmId"] and made.storage_profile.os_disk.name == "rebuilt-os"
