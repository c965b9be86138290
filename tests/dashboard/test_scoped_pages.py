"""The Control Tower for a reader restricted to one organisation (issue 14 item 5): every warehouse page
renders without an error, the numbers are that organisation's, and fleet-wide parts say they are hidden.

Who the caller is comes from sign-in (another change); here the sidebar is given the organisations the
way the entry file will pass them, `filters.sidebar(root, orgs)`.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from tests.dashboard.support import open_page, tables, texts

WAREHOUSE_PAGES = ("overview", "drift", "compliance", "dr", "sites", "images")


def _vms_of(wh, day: str, org: str) -> int:
    return sum(pq.read_table(wh.file("inventory", day, p), columns=["org"])["org"].to_pylist().count(org)
               for p in ("aws", "azure", "gcp", "vsphere"))


@pytest.fixture()
def acme_reader(one_day, monkeypatch):
    # the reader is who the session says: a local-mode user whose only grant is viewer@acme
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_USER", "rita")
    monkeypatch.setenv("QLRF_DASHBOARD_LOCAL_ROLES", "viewer@acme")
    return one_day


@pytest.mark.parametrize("page", WAREHOUSE_PAGES)
def test_every_page_renders_for_a_restricted_reader(acme_reader, page):
    at = open_page(page)
    assert "Traceback" not in texts(at)


def test_overview_counts_only_the_readers_organisation(acme_reader):
    wh, day = acme_reader
    acme = _vms_of(wh, day, "acme")
    assert 0 < acme < 12_200
    at = open_page("overview")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["VMs"] == f"{acme:,}"
    rows = tables(at, "pct_current_golden")[0].set_index("platform")
    assert int(rows.loc["all", "vms"]) == acme
