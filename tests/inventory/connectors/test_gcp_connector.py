"""The GCP connector through the real google-cloud-compute REST clients against the HTTP fake.

One discovery of a 3+1 project estate (one project 403, one throttled twice with 429, pages of 6) is
shared by most tests; the live rows must equal the file normaliser's rows over the same REST JSON.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials, Credentials

from qlrf.inventory.connectors import gcp as connector
from qlrf.inventory.contract import inventory_table, snapshot_table
from qlrf.inventory.normalize import gcp as normalize_gcp
from qlrf.inventory.tags import TagMapping
from tests.fakes.fixtures import gcp_fixture
from tests.fakes.gcp_fake import start_gcp_fake
from tests.inventory.connectors.support import without_time

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
MAPPING = TagMapping()
INT64_MAX = 2**63 - 1


@pytest.fixture(scope="module")
def fx() -> dict[str, Any]:
    return gcp_fixture(projects=3, instances_per_project=20, failing_projects=1, throttled_projects={1: 2})


@pytest.fixture(scope="module")
def fake(fx):
    with start_gcp_fake(fx) as fake:
        yield fake


def _config(fake, projects, **kw) -> connector.GcpConfig:
    kw.setdefault("credentials", AnonymousCredentials())
    kw.setdefault("page_size", 6)
    kw.setdefault("retry_initial", 0.01)
    kw.setdefault("retry_maximum", 0.05)
    kw.setdefault("retry_timeout", 10)
    return connector.GcpConfig(projects=list(projects), api_endpoint=fake.base_url, **kw)


@pytest.fixture(scope="module")
def run(fx, fake):
    fake.clear_requests()
    messages: list[str] = []
    out = connector.discover(
        _config(fake, fx["workload_projects"]), mapping=MAPPING, discovered_at=NOW, progress=messages.append
    )
    return out, fake.requests, messages


def _healthy(fx) -> list[str]:
    return [p for p in fx["workload_projects"] if p not in fx["faults"]["fail"]]


def _file_rows(fx, projects, discovered_at=NOW):
    docs = []
    for pid in projects:
        data = fx["projects"][pid]
        docs += [(f"{pid}/instances.json", data["instances"]), (f"{pid}/disks.json", data["disks"]),
                 (f"{pid}/snapshots.json", data["snapshots"])]  # fmt: skip
    return normalize_gcp.normalise(docs, mapping=MAPPING, discovered_at=discovered_at)


def test_rows_identical_to_file_normaliser(run, fx) -> None:
    out, _, _ = run
    later = _file_rows(fx, _healthy(fx), NOW + timedelta(hours=5))
    assert not out.errors and not later.errors
    assert without_time(out.vms) == without_time(later.vms)
    assert len(out.vms) == sum(len(fx["projects"][p]["instances"]) for p in _healthy(fx))
    same_time = _file_rows(fx, _healthy(fx))
    key = lambda s: (s["asset_id"], s["snapshot_id"])  # noqa: E731
    assert sorted(out.snapshots, key=key) == sorted(same_time.snapshots, key=key)
    inventory_table(out.vms), snapshot_table(out.snapshots)


def test_uint64_ids_and_statuses(run, fx) -> None:
    out, _, _ = run
    rows = {r["asset_id"]: r for r in out.vms}
    raw = {i["id"]: i for p in _healthy(fx) for i in fx["projects"][p]["instances"]}
    assert set(rows) == set(raw)  # decimal strings, exactly as GCE's JSON has them
    assert any(int(i) > INT64_MAX for i in rows)
    want = {"RUNNING": "running", "TERMINATED": "stopped", "STOPPING": "stopped", "SUSPENDED": "stopped"}
    assert {i: r["state"] for i, r in rows.items()} == {i: want.get(raw[i]["status"], "other") for i in raw}
    assert {"running", "stopped", "other"} <= {r["state"] for r in rows.values()}


def test_boot_disk_images(run, fx) -> None:
    out, _, _ = run
    for pid in _healthy(fx):
        disks = {d["selfLink"]: d for d in fx["projects"][pid]["disks"]}
        for inst in fx["projects"][pid]["instances"]:
            boot = disks[next(d["source"] for d in inst["disks"] if d["boot"])]
            row = next(r for r in out.vms if r["asset_id"] == inst["id"])
            # restored from a snapshot that is not in the listings: honestly unknown
            assert row["image_ref"] == boot.get("sourceImage"), inst["name"]
    assert any(r["image_ref"] is None for r in out.vms) and any(r["image_ref"] for r in out.vms)


def test_restored_disk_follows_a_known_snapshot_to_its_image(fx) -> None:
    """If the snapshot a boot disk was restored from and that snapshot's disk are listed, the image is
    the source disk's, in the file normaliser and the live connector alike."""
    fx2 = copy.deepcopy(fx)
    pid = next(p for p in _healthy(fx2) if any("sourceSnapshot" in d for d in fx2["projects"][p]["disks"]))
    data = fx2["projects"][pid]
    restored = next(d for d in data["disks"] if "sourceSnapshot" in d)
    origin = next(d for d in data["disks"] if d.get("sourceImage") and d["name"] != restored["name"])
    snap = copy.deepcopy(next(s for s in data["snapshots"]))
    snap.update(name=restored["sourceSnapshot"].rsplit("/", 1)[1], selfLink=restored["sourceSnapshot"],
                sourceDisk=origin["selfLink"], sourceDiskId=origin["id"])  # fmt: skip
    data["snapshots"].append(snap)
    owner = next(i for i in data["instances"] if any(d["source"] == restored["selfLink"] for d in i["disks"]))
    file_row = next(r for r in _file_rows(fx2, [pid]).vms if r["asset_id"] == owner["id"])
    assert file_row["image_ref"] == origin["sourceImage"]
    with start_gcp_fake(fx2) as fake2:
        out = connector.discover(_config(fake2, [pid], page_size=500), mapping=MAPPING, discovered_at=NOW)
    assert without_time(out.vms) == without_time(_file_rows(fx2, [pid]).vms)


def test_managed_instance_groups(run, fx) -> None:
    out, _, _ = run
    groups = {g["group_id"]: g for g in out.facts["scaling_groups"]}
    rows = {r["asset_id"]: r for r in out.vms}
    for pid in _healthy(fx):
        data = fx["projects"][pid]
        for mig in data["instanceGroupManagers"]:
            group = groups[mig["selfLink"]]
            # created-by names the project by number, not id
            tail = mig["selfLink"].split(f"/projects/{pid}/", 1)[1]
            members = [
                i for i in data["instances"]
                for m in i["metadata"]["items"]
                if m["key"] == "created-by" and m["value"] == f"projects/{data['number']}/{tail}"
            ]  # fmt: skip
            assert members and group["members"] == sorted(i["id"] for i in members)
            assert group["desired_capacity"] == mig["targetSize"] == len(members)
            assert group["instance_template"] == mig["instanceTemplate"]
            assert group["members_on_other_template"] == 0
            assert all(rows[m]["group"] == mig["name"] for m in group["members"])
            assert (group["zone"] is None) == ("region" in mig)
    assert len(groups) == 2 * len(_healthy(fx))


def test_images_own_and_foreign(run, fx, fake) -> None:
    out, requests, _ = run
    images = {i["image_id"]: i for i in out.facts["images"]}
    used = {r["image_ref"] for r in out.vms if r["image_ref"]}
    assert used <= set(images) and all(images[u]["found"] for u in used)
    for pid in _healthy(fx):  # the projects' own images, used or not
        assert {i["selfLink"] for i in fx["projects"][pid]["images"]} <= set(images)
    golden = [i for i in images.values() if i["account"] == "rf-golden-images"]
    assert golden and {i["deprecation_state"] for i in golden} >= {None, "DEPRECATED"}
    assert all(i["created_at"] and i["family"] for i in images.values())
    # foreign images were fetched one by one, each once
    gets = [r.path for r in requests if "/global/images/" in r.path]
    assert gets and len(gets) == len(set(gets))


def test_snapshots_linked_by_source_disk(run, fx) -> None:
    out, _, _ = run
    attached = {
        d["source"]: i["id"] for p in _healthy(fx) for i in fx["projects"][p]["instances"] for d in i["disks"]
    }
    expected = [
        s for p in _healthy(fx) for s in fx["projects"][p]["snapshots"] if s["sourceDisk"] in attached
    ]
    assert len(out.snapshots) == len(expected) > 0
    assert all(attached[s["source_id"]] == s["asset_id"] for s in out.snapshots)


def test_paging(run, fx) -> None:
    _, requests, _ = run
    for pid in _healthy(fx):
        for coll in ("aggregated/instances", "aggregated/disks", "global/snapshots"):
            pages = [r for r in requests if r.scope == pid and r.path.endswith(coll) and r.status == 200]
            assert len(pages) > 1, (pid, coll)
            assert any("pageToken" in r.query for r in pages)
            assert all(r.query["maxResults"] == ["6"] for r in pages)


def test_throttled_project_retried(run, fx) -> None:
    out, requests, _ = run
    throttled = next(iter(fx["faults"]["throttle"]))
    assert [r.status for r in requests if r.scope == throttled].count(429) == 2
    assert sum(r["account"] == throttled for r in out.vms) == len(fx["projects"][throttled]["instances"])
    assert not any(f["scope"].startswith(f"gcp:{throttled}") for f in out.failed_scopes)


def test_failing_project_recorded_others_returned(run, fx) -> None:
    out, _, messages = run
    bad = next(iter(fx["faults"]["fail"]))
    assert out.failed_scopes == [
        {
            "scope": f"gcp:{bad}",
            "reason": f"403 IAM_PERMISSION_DENIED: Required 'compute.instances.list' permission for 'projects/{bad}'",
        }
    ]
    assert {r["account"] for r in out.vms} == set(_healthy(fx))
    assert any(m.startswith(f"gcp {bad}: FAILED: 403") for m in messages)
    assert "3/4 projects" in messages[-1]


def test_api_disabled_and_unknown_project(fx, fake) -> None:
    good, bad = _healthy(fx)[0], next(iter(fx["faults"]["fail"]))
    fake.fail(bad, "api_disabled")
    try:
        out = connector.discover(
            _config(fake, [good, bad, "rf-no-such-project"]), mapping=MAPPING, discovered_at=NOW
        )
    finally:
        fake.fail(bad, "permission")
    reasons = {f["scope"]: f["reason"] for f in out.failed_scopes}
    assert reasons[f"gcp:{bad}"].startswith(
        "403 SERVICE_DISABLED: Compute Engine API has not been used in project"
    )
    assert (
        reasons["gcp:rf-no-such-project"]
        == "404 notFound: The resource 'projects/rf-no-such-project' was not found"
    )
    assert {r["account"] for r in out.vms} == {good}


class _ExpiredCredentials(Credentials):
    """A credential whose refresh is refused, like an expired or revoked refresh token."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def refresh(self, request) -> None:
        from google.auth.exceptions import RefreshError

        raise RefreshError("invalid_grant: Token has been expired or revoked.", {"error": "invalid_grant"})


def test_expired_or_missing_credentials_name_the_project(fx, fake, tmp_path, caplog) -> None:
    projects = _healthy(fx)[:2]
    with caplog.at_level(logging.DEBUG):
        out = connector.discover(
            _config(fake, projects, credentials=_ExpiredCredentials("rf-refresh-token-secret")),
            mapping=MAPPING, discovered_at=NOW,
        )  # fmt: skip
    assert out.vms == [] and [f["scope"] for f in out.failed_scopes] == [f"gcp:{p}" for p in sorted(projects)]
    for failure in out.failed_scopes:
        assert failure["reason"].startswith(
            f"project {failure['scope'][4:]}: Google credentials were rejected or have expired (RefreshError)"
        )
    assert "rf-refresh-token-secret" not in repr(out.failed_scopes) + caplog.text

    missing = tmp_path / "no-such-key.json"
    out = connector.discover(
        _config(fake, projects, credentials=None, credentials_file=str(missing)),
        mapping=MAPPING,
        discovered_at=NOW,
    )
    assert out.vms == [] and len(out.failed_scopes) == 2
    assert all(
        f["reason"]
        == f"project {f['scope'][4:]}: no usable Google credentials: File {missing} was not found."
        for f in out.failed_scopes
    )


def test_config_from_env() -> None:
    env = {
        "QLRF_GCP_PROJECTS": "a, b,",
        "GOOGLE_APPLICATION_CREDENTIALS": "/keys/sa.json",
        "QLRF_GCP_ENDPOINT": "http://127.0.0.1:9",
        "QLRF_GCP_MAX_WORKERS": "2",
        "QLRF_GCP_PAGE_SIZE": "9000",
    }
    config = connector.config_from_env(env)
    assert (config.projects, config.credentials_file, config.api_endpoint) == (
        ["a", "b"],
        "/keys/sa.json",
        "http://127.0.0.1:9",
    )
    assert config.max_workers == 2 and config.page_size == connector.MAX_PAGE_SIZE
    with pytest.raises(ValueError, match="no projects"):
        connector.discover(connector.GcpConfig(), mapping=MAPPING, discovered_at=NOW)
    retry = connector.make_retry(config)
    from google.api_core import exceptions as gexc

    assert retry._predicate(gexc.TooManyRequests("x")) and not retry._predicate(gexc.Forbidden("x"))


def test_resource_reads_env_at_call_time(fx, fake, monkeypatch) -> None:
    import google.auth

    from resources.gcp import GcpResource

    resource = GcpResource(endpoint=fake.base_url)
    pid = _healthy(fx)[2]
    monkeypatch.setenv("QLRF_GCP_PROJECTS", pid)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setattr(google.auth, "default", lambda scopes=None, **kw: (AnonymousCredentials(), None))
    out = resource.discover(NOW, MAPPING)
    assert not out.failed_scopes and {r["account"] for r in out.vms} == {pid}
    assert out.facts["images"] and out.facts["scaling_groups"]


def test_unreachable_zones_are_reported_not_hidden() -> None:
    from google.cloud import compute_v1

    page = compute_v1.InstanceAggregatedList(
        items={
            "zones/europe-west4-a": compute_v1.InstancesScopedList(
                instances=[compute_v1.Instance(id=2**64 - 5, name="a", zone="zones/europe-west4-a")]
            ),
            "zones/us-east1-b": compute_v1.InstancesScopedList(
                warning=compute_v1.Warning(code="NO_RESULTS_ON_PAGE", message="There are no results")
            ),
            "zones/asia-east1-a": compute_v1.InstancesScopedList(
                warning=compute_v1.Warning(code="UNREACHABLE", message="zone is unreachable")
            ),
        },
        unreachables=["zones/me-west1-c"],
    )
    items, unreachable, pages = connector.scan_aggregated([page], "instances", "compute#instance", "p")
    assert pages == 1 and [(i["id"], i["kind"]) for i in items] == [(str(2**64 - 5), "compute#instance")]
    assert unreachable == {
        "zones/asia-east1-a": "UNREACHABLE: zone is unreachable",
        "zones/me-west1-c": "UNREACHABLE",
    }


def test_throttling_beyond_the_retry_budget_fails_only_that_project(fx, fake) -> None:
    good, hot = _healthy(fx)[0], _healthy(fx)[2]
    fake.throttle(hot, times=10_000)
    try:
        out = connector.discover(
            _config(fake, [good, hot], retry_timeout=0.3, page_size=500), mapping=MAPPING, discovered_at=NOW
        )
    finally:
        fake.throttle(hot, times=0)
    assert [f["scope"] for f in out.failed_scopes] == [f"gcp:{hot}"]
    reason = out.failed_scopes[0]["reason"]
    assert (
        reason.startswith("429 RATE_LIMIT_EXCEEDED: Quota exceeded")
        and "still failing after retries" in reason
    )
    assert {r["account"] for r in out.vms} == {good}
