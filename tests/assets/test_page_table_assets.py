"""The page-table assets: made by every day's platform run, counting every VM of their per-VM table."""

from __future__ import annotations

import shutil

import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster import AssetSelection, MultiPartitionKey, materialize

from qlrf.platforms import PLATFORMS
from qlrf.scoring.page_tables import PAGE_TABLES
from qlrf.warehouse import Warehouse
from tests.helpers import all_assets, resources_for


def test_the_daily_graph_writes_every_page_table_for_every_platform(materialized_day):
    root, day = materialized_day
    wh = Warehouse(str(root))
    for table in PAGE_TABLES:
        for platform in PLATFORMS:
            counted = pq.read_table(wh.file(table.name, day, platform))
            assert pc.sum(counted["vms"]).as_py() == wh.num_rows(table.source, day, platform) > 0, (table.name, platform)
            assert set(counted["platform"].to_pylist()) == {platform} and None not in counted["org"].to_pylist()


def test_materializing_one_page_table_rewrites_it_and_passes_its_check(materialized_day, tmp_path):
    root, day = materialized_day
    copy = tmp_path / "warehouse"
    shutil.copytree(root, copy)
    wh = Warehouse(str(copy))
    expected = pq.read_table(wh.file("dr_breakdown", day, "gcp"))
    (copy / "dr_breakdown").rename(tmp_path / "gone")  # as if the page tables had never been made
    result = materialize(all_assets(), selection=AssetSelection.assets("dr_breakdown"),
                         partition_key=MultiPartitionKey({"date": day, "platform": "gcp"}),
                         resources=resources_for(copy, tmp_path / "estate"))
    assert result.success
    assert pq.read_table(wh.file("dr_breakdown", day, "gcp")).equals(expected)  # ORDER BY ALL: the same rows, same order
    checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert [(c.check_name, c.passed) for c in checks] == [("counts_every_vm", True)]
    assert checks[0].metadata["vms_counted"].value == wh.num_rows("vm_dr", day, "gcp")
