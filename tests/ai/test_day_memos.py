"""Facts the ask remembers per process (a day's sites, a partition's scaling groups) are keyed by the
partition files as they are now: a re-materialised day is read again, never answered from the old files."""

from __future__ import annotations

import os

import pyarrow as pa

from qlrf import sql
from qlrf.ai.scope import DayView
from qlrf.remediation import planner
from qlrf.warehouse import Warehouse

DAY = "2026-11-20"


def _vm_drift(sites: list[str], group: str) -> pa.Table:
    n = len(sites)
    return pa.table({
        "asset_id": [f"i-{i}" for i in range(n)], "platform": ["aws"] * n, "account": ["111"] * n,
        "region": ["eu-west-2"] * n, "site": sites, "environment": ["prod"] * n, "owner": ["web"] * n,
        "group": [group] * n, "state": ["running"] * n, "family": ["ubuntu-22.04"] * n, "status": ["behind"] * n,
        "org": ["acme"] * n, "project": ["web"] * n,
    })


def _rewrite(wh: Warehouse, table: pa.Table) -> None:
    path = wh.file("vm_drift", DAY, "aws")
    before = os.stat(path).st_mtime_ns if os.path.exists(path) else 0
    wh.write("vm_drift", table, DAY, "aws")
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a later mtime even on a coarse clock


def test_a_rewritten_day_gives_its_new_sites_and_groups(tmp_path):
    wh = Warehouse(str(tmp_path / "warehouse"))
    _rewrite(wh, _vm_drift(["lon1", "lon1"], "asg-a"))
    path = wh.source("vm_drift", DAY, "aws")
    first_key = sql.files_key([path])
    with DayView(wh, DAY) as view:
        assert view.sites() == ["lon1"]
    with sql.session() as con:
        sql.relation(con, "vm_drift", path)
        assert planner._group_rows(con, path, ["aws"]) == [("aws", "111", "eu-west-2", "asg-a", 2, ["ubuntu-22.04"])]

    _rewrite(wh, _vm_drift(["syd1", "sfo1", "sfo1"], "asg-b"))
    assert sql.files_key([path]) != first_key
    with DayView(wh, DAY) as view:
        assert view.sites() == ["sfo1", "syd1"]
    with sql.session() as con:
        sql.relation(con, "vm_drift", path)
        assert planner._group_rows(con, path, ["aws"]) == [("aws", "111", "eu-west-2", "asg-b", 3, ["ubuntu-22.04"])]


def test_the_free_text_index_answers_every_scope_as_the_direct_scan(materialized_day):
    """A scope's owner/group values read from the day's index are exactly those of a scan of its VMs
    (values, fields and the first VM carrying each), for whole-day, site, environment, platform and
    organisation scopes of the sample day (tags with planted instructions included)."""
    from qlrf.ai.taskspec import Scope

    root, day = materialized_day
    wh = Warehouse(str(root))
    with DayView(wh, day) as view:
        sites = view.sites()
        scopes = [Scope(), Scope(site=sites[0]), Scope(environment="prod"), Scope(site=sites[-1], environment="dev"),
                  Scope(platform="aws"), Scope(platform="vsphere", site=sites[1]), Scope(org="acme"),
                  Scope(site="nowhere")]
        compared = 0
        for scope in scopes:
            params = {"site": scope.site, "environment": scope.environment, "platform": scope.platform,
                      "ids": [], "org": scope.org, "limit": 20_000}
            direct = view._free_text_direct(params)
            assert view.free_text(scope) == direct, scope
            compared += len(direct)
        assert compared > 50
        assert view.free_text(Scope(), limit=3) == view._free_text_direct({**params, "site": None, "limit": 3})


def test_files_memo_keeps_at_most_its_cap_and_computes_again_after_a_rewrite(tmp_path):
    files = []
    for name in ("a", "b", "c"):
        path = tmp_path / f"{name}.parquet"
        path.write_bytes(name.encode())
        files.append(str(path))
    memo, calls = sql.FilesMemo(2), []

    def compute(label):
        calls.append(label)
        return label

    a, b, c = files
    assert memo.get([a], None, lambda: compute("a")) == "a"
    assert memo.get([b], None, lambda: compute("b")) == "b"
    assert memo.get([b], None, lambda: compute("b again")) == "b"  # kept: not computed again
    assert memo.get([c], None, lambda: compute("c")) == "c"  # a third entry: the oldest (a) goes
    assert memo.get([a], None, lambda: compute("a again")) == "a again"
    assert memo.get([a], "other", lambda: compute("a other")) == "a other"  # the extra facts are part of the key
    assert memo.get([a], None, lambda: compute("a kept")) == "a again"
    (tmp_path / "a.parquet").write_bytes(b"aa")  # rewritten: another size
    assert memo.get([a], None, lambda: compute("a rewritten")) == "a rewritten"
    assert calls == ["a", "b", "c", "a again", "a other", "a rewritten"]
