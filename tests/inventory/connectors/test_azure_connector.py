"""The Azure connector through the real azure-mgmt-compute / azure-identity clients against the HTTPS fake.

One discovery of a 3+1 subscription estate (one subscription 403, one throttled twice, pages of 5) is
shared by most tests; the live rows must equal the file normaliser's rows over the same ARM JSON.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from qlrf.inventory.connectors import azure as connector
from qlrf.inventory.contract import inventory_table, snapshot_table
from qlrf.inventory.normalize import azure as normalize_azure
from qlrf.inventory.tags import TagMapping
from tests.fakes.azure_fake import start_azure_fake
from tests.fakes.fixtures import azure_fixture
from tests.inventory.connectors.support import without_time

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
MAPPING = TagMapping()


@pytest.fixture(scope="module")
def fx() -> dict[str, Any]:
    return azure_fixture(
        subscriptions=3, vms_per_sub=20, failing_subscriptions=1, throttled_subscriptions={1: 2}
    )


@pytest.fixture(scope="module")
def fake(fx):
    with start_azure_fake(fx, page_size=5, retry_after="0") as fake:
        yield fake


def _config(fake, subs, **kw) -> connector.AzureConfig:
    kw.setdefault("retry_total", 3)
    kw.setdefault("retry_backoff_factor", 0)
    return connector.AzureConfig(
        subscriptions=list(subs), base_url=fake.base_url, connection_verify=fake.ca_path, **kw
    )


@pytest.fixture(scope="module")
def run(fx, fake):
    fake.clear_requests()
    messages: list[str] = []
    out = connector.discover(
        _config(fake, fx["subscriptions"]),
        mapping=MAPPING,
        discovered_at=NOW,
        progress=messages.append,
        credential=fake.credential(),
    )
    return out, fake.requests, messages


def _healthy(fx) -> list[str]:
    return [s for s in fx["subscriptions"] if s not in fx["faults"]["fail"]]


def _file_rows(fx, subs, discovered_at=NOW):
    docs = []
    for sub in subs:
        data = fx["subscriptions"][sub]
        docs += [
            (f"{sub}/vms.json", data["virtualMachines"]),
            (f"{sub}/vmss-vms.json", {"value": data["virtualMachineScaleSetVMs"]}),
            (f"{sub}/snapshots.json", data["snapshots"]),
        ]
    return normalize_azure.normalise(docs, mapping=MAPPING, discovered_at=discovered_at)


def test_rows_identical_to_file_normaliser(run, fx) -> None:
    out, _, _ = run
    later = _file_rows(fx, _healthy(fx), NOW + timedelta(hours=5))
    assert not out.errors and not later.errors
    assert without_time(out.vms) == without_time(later.vms)
    assert len(out.vms) == sum(
        len(fx["subscriptions"][s]["virtualMachines"])
        + len(fx["subscriptions"][s]["virtualMachineScaleSetVMs"])
        for s in _healthy(fx)
    )
    same_time = _file_rows(fx, _healthy(fx))
    assert sorted(out.snapshots, key=lambda s: s["snapshot_id"]) == sorted(
        same_time.snapshots, key=lambda s: s["snapshot_id"]
    )
    inventory_table(out.vms), snapshot_table(out.snapshots)  # contract-conformant


def test_power_states(run, fx) -> None:
    out, _, _ = run
    raw = {
        vm["properties"]["vmId"]: vm["properties"]["instanceView"]["statuses"][1]["code"]
        for s in _healthy(fx)
        for key in ("virtualMachines", "virtualMachineScaleSetVMs")
        for vm in fx["subscriptions"][s][key]
    }
    want = {"PowerState/running": "running", "PowerState/deallocated": "stopped", "PowerState/stopped": "stopped",
            "PowerState/deallocating": "stopped", "PowerState/starting": "other"}  # fmt: skip
    got = {r["asset_id"]: r["state"] for r in out.vms}
    assert got == {vm_id: want[code] for vm_id, code in raw.items()}
    assert {"running", "stopped"} <= set(got.values())


def test_scale_set_membership(run, fx) -> None:
    out, _, _ = run
    groups = {g["group_id"].lower(): g for g in out.facts["scaling_groups"]}
    rows = {r["asset_id"]: r for r in out.vms}
    for sub in _healthy(fx):
        data = fx["subscriptions"][sub]
        for vmss in data["virtualMachineScaleSets"]:
            group = groups[vmss["id"].lower()]
            if vmss["properties"]["orchestrationMode"] == "Uniform":
                expected = [
                    v for v in data["virtualMachineScaleSetVMs"] if v["id"].startswith(vmss["id"] + "/")
                ]
                assert group["desired_capacity"] == vmss["sku"]["capacity"] == len(expected)
                assert group["would_launch_image"] == normalize_azure.image_ref(
                    vmss["properties"]["virtualMachineProfile"]["storageProfile"]
                )
                assert group["members_on_other_image"] == 0
            else:
                expected = [
                    v for v in data["virtualMachines"]
                    if v["properties"].get("virtualMachineScaleSet", {}).get("id") == vmss["id"]
                ]  # fmt: skip
                assert group["orchestration_mode"] == "Flexible"
            assert expected
            assert group["members"] == sorted(v["properties"]["vmId"] for v in expected)
            assert all(rows[m]["group"] == vmss["name"] for m in group["members"])
    assert len(groups) == sum(len(fx["subscriptions"][s]["virtualMachineScaleSets"]) for s in _healthy(fx))


def test_gallery_and_managed_image_refs(run, fx) -> None:
    out, _, _ = run
    images = {i["image_id"].lower(): i for i in out.facts["images"]}
    img_sub = fx["image_subscription"]
    versions = fx["subscriptions"][img_sub]["galleryImageVersions"]
    assert {v["id"].lower() for v in versions} <= set(images)
    refs = [r["image_ref"] for r in out.vms]
    gallery_versions = [r for r in refs if "/versions/" in r]
    definitions = [r for r in refs if "/galleries/" in r and "/versions/" not in r]
    managed = [r for r in refs if "/images/" in r and "/galleries/" not in r]
    marketplace = [r for r in refs if not r.startswith("/subscriptions/")]
    assert gallery_versions and definitions and managed and marketplace
    # referenced from other subscriptions too: the golden gallery lives in the first one
    assert {r["account"] for r in out.vms if "/versions/" in (r["image_ref"] or "")} > {img_sub}
    for ref in gallery_versions + definitions + managed:
        assert images[ref.lower()]["found"] is True, ref
    for ref in definitions:  # "latest": the definition row names the version it resolves to
        latest = images[ref.lower()]["latest_version"]
        assert latest and images[latest.lower()]["latest"] is True and latest.endswith("/versions/1.3.0")
    eol = [i for i in images.values() if i["image_type"] == "gallery_image_version" and i["deprecated_at"]]
    assert eol and all(i["version"] == "1.0.0" for i in eol)
    assert all(i["created_at"] for i in images.values() if i["image_type"] == "gallery_image_version")


def test_snapshots_linked_despite_id_case(run, fx) -> None:
    out, _, _ = run
    os_disks, expected = {}, 0
    for sub in _healthy(fx):
        data = fx["subscriptions"][sub]
        for vm in data["virtualMachines"] + data["virtualMachineScaleSetVMs"]:
            os_disks[vm["properties"]["storageProfile"]["osDisk"]["managedDisk"]["id"]] = vm["properties"][
                "vmId"
            ]
        expected += len(data["snapshots"])
    # the fixture upper-cases resource groups in the VMs' disk references, not in the snapshots'
    sources = {s["source_id"] for s in out.snapshots}
    assert not sources & set(os_disks)
    assert sources <= {d.lower() for d in os_disks}
    assert len(out.snapshots) == expected > 0
    lowered = {d.lower(): vm for d, vm in os_disks.items()}
    assert all(lowered[s["source_id"]] == s["asset_id"] for s in out.snapshots)


def test_paging(run, fx) -> None:
    _, requests, _ = run
    for sub in _healthy(fx):
        pages = [
            r for r in requests
            if r.scope == sub.lower() and r.status == 200 and r.path.lower().endswith("/virtualmachines")
            and "/virtualmachinescalesets/" not in r.path.lower()
        ]  # fmt: skip
        assert len(pages) > 1, sub
        assert any("$skiptoken" in r.query for r in pages)
        assert all((r.query.get("statusOnly") or [""])[0] == "true" for r in pages)


def test_throttled_subscription_still_discovered(run, fx) -> None:
    out, requests, _ = run
    throttled = next(iter(fx["faults"]["throttle"]))
    assert [r.status for r in requests if r.scope == throttled.lower()].count(429) == 2
    assert sum(r["account"] == throttled for r in out.vms) == len(
        fx["subscriptions"][throttled]["virtualMachines"]
    ) + len(fx["subscriptions"][throttled]["virtualMachineScaleSetVMs"])
    assert not any(f["scope"].startswith(f"azure:{throttled}") for f in out.failed_scopes)


def test_failing_subscription_recorded_others_returned(run, fx) -> None:
    out, _, messages = run
    bad = next(iter(fx["faults"]["fail"]))
    assert [f["scope"] for f in out.failed_scopes] == [f"azure:{bad}"]
    reason = out.failed_scopes[0]["reason"]
    assert reason.startswith("403 AuthorizationFailed: The client")
    assert "'Microsoft.Compute/virtualMachines/read'" in reason
    assert {r["account"] for r in out.vms} == set(_healthy(fx))
    assert any(m.startswith(f"azure {bad}: FAILED: 403") for m in messages)
    assert messages[-1].startswith(f"azure: {len(out.vms)} VMs") and "3/4 subscriptions" in messages[-1]


def test_subscription_not_found(fx, fake) -> None:
    good = _healthy(fx)[2]
    missing = "00000000-0000-4000-8000-00000000dead"
    out = connector.discover(
        _config(fake, [good, missing]), mapping=MAPPING, discovered_at=NOW, credential=fake.credential()
    )
    assert out.failed_scopes == [
        {
            "scope": f"azure:{missing}",
            "reason": f"404 SubscriptionNotFound: The subscription '{missing}' could not be found.",
        }
    ]
    assert {r["account"] for r in out.vms} == {good}


def test_status_only_pages_without_the_model(fx) -> None:
    """If statusOnly=true answers carry only the instance view, the full list fills in the model."""
    subs = _healthy(fx)[:1]
    with start_azure_fake(fx, page_size=50, status_only_trims=True) as fake:
        out = connector.discover(
            _config(fake, subs), mapping=MAPPING, discovered_at=NOW, credential=fake.credential()
        )
        listings = [r.query.get("statusOnly") for r in fake.requests if r.path.endswith("/virtualMachines")]
    assert without_time(out.vms) == without_time(_file_rows(fx, subs).vms)
    assert ["true"] in listings and None in listings


def test_client_secret_credential_against_token_service(fx, fake) -> None:
    sub = _healthy(fx)[0]
    fake.clear_requests()
    config = _config(
        fake,
        [sub],
        tenant_id=fake.tenant_id,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        authority=fake.authority,
    )
    out = connector.discover(config, mapping=MAPPING, discovered_at=NOW)
    assert not out.failed_scopes and len(out.vms) == 23
    token_calls = [r for r in fake.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert len(token_calls) == 1  # fetched once, cached for every client and thread
    tokens = {r.authorization for r in fake.requests if r.scope}
    assert tokens == {f"Bearer {fake.issued_tokens[-1]}"}


def test_wrong_secret_is_a_clear_error_without_the_secret(fx, fake, caplog) -> None:
    subs = _healthy(fx)[:2]
    secret = "rf-wrong-secret-9f8e7d6c"
    fake.clear_requests()
    messages: list[str] = []
    with caplog.at_level(logging.DEBUG):
        out = connector.discover(
            _config(fake, subs, tenant_id=fake.tenant_id, client_id=fake.client_id, client_secret=secret,
                    authority=fake.authority),
            mapping=MAPPING, discovered_at=NOW, progress=messages.append,
        )  # fmt: skip
    assert out.vms == [] and [f["scope"] for f in out.failed_scopes] == sorted(f"azure:{s}" for s in subs)
    for failure in out.failed_scopes:
        sub = failure["scope"].removeprefix("azure:")
        assert failure["reason"].startswith(f"subscription {sub}: cannot get an access token for client ")
        assert fake.client_id in failure["reason"] and "AADSTS7000215" in failure["reason"]
        assert "Trace ID" not in failure["reason"]
    assert secret not in repr(out.failed_scopes) + "\n".join(messages) + caplog.text
    assert secret not in repr(connector.AzureConfig(client_secret=secret))
    assert not [r for r in fake.requests if r.scope]  # no ARM call with a credential that cannot work


def test_config_from_env() -> None:
    env = {
        "QLRF_AZURE_SUBSCRIPTIONS": " a-1, b-2 ,,",
        "AZURE_TENANT_ID": "t",
        "AZURE_CLIENT_ID": "c",
        "AZURE_CLIENT_SECRET": "s3cret",
        "QLRF_AZURE_ENDPOINT": "https://127.0.0.1:9",
        "QLRF_AZURE_MAX_WORKERS": "3",
        "QLRF_AZURE_RETRY_TOTAL": "0",
    }
    config = connector.config_from_env(env)
    assert config.subscriptions == ["a-1", "b-2"] and config.max_workers == 3 and config.retry_total == 0
    assert (config.tenant_id, config.client_id, config.client_secret) == ("t", "c", "s3cret")
    assert config.scope() == "https://127.0.0.1:9/.default" and "s3cret" not in repr(config)
    assert connector.config_from_env({}).scope() == connector.ARM_SCOPE
    with pytest.raises(ValueError, match="QLRF_AZURE_MAX_WORKERS"):
        connector.config_from_env({"QLRF_AZURE_MAX_WORKERS": "zero"})
    with pytest.raises(ValueError, match="no subscriptions"):
        connector.discover(connector.AzureConfig(), mapping=MAPPING, discovered_at=NOW)
    with pytest.raises(ValueError, match="AZURE_TENANT_ID"):
        connector.make_credential(connector.AzureConfig(client_id="c", client_secret="s"))


def test_resource_reads_env_at_call_time(fx, fake, monkeypatch) -> None:
    from dagster import EnvVar, build_resources

    from resources.azure import AzureResource

    # what a deployment binds: the secret by name (Dagster shows the name, never the value)
    resource = AzureResource(
        client_secret=EnvVar("AZURE_CLIENT_SECRET"),
        endpoint=fake.base_url,
        authority=fake.authority,
        ca_bundle=fake.ca_path,
        retry_total=2,
    )
    sub = _healthy(fx)[1]
    # set after the resource was built: unset fields come from the environment when discover() runs
    monkeypatch.setenv("QLRF_AZURE_SUBSCRIPTIONS", sub)
    monkeypatch.setenv("AZURE_TENANT_ID", fake.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", fake.client_secret)
    assert fake.client_secret not in repr(resource)
    with build_resources({"azure": resource}) as resources:
        out = resources.azure.discover(NOW, MAPPING)
    assert not out.failed_scopes and {r["account"] for r in out.vms} == {sub}
    assert out.facts["images"] and out.facts["scaling_groups"]


def test_throttling_beyond_the_retry_budget_fails_only_that_subscription(fx, fake) -> None:
    good, hot = _healthy(fx)[0], _healthy(fx)[2]
    fake.throttle(hot, times=10_000, retry_after="0")
    try:
        out = connector.discover(
            _config(fake, [good, hot], retry_total=1),
            mapping=MAPPING,
            discovered_at=NOW,
            credential=fake.credential(),
        )
    finally:
        fake.throttle(hot, times=0)
    assert [f["scope"] for f in out.failed_scopes] == [f"azure:{hot}"]
    assert out.failed_scopes[0]["reason"].startswith(
        "429 OperationNotAllowed: The server rejected the request"
    )
    assert {r["account"] for r in out.vms} == {good}
