"""The daily graph with QLRF_WAREHOUSE=s3://...: written to a loopback moto S3, read back by the report,
a dashboard loader and `qlrf sbom query`, equal to the same day on local disk.

Smallest day that proves it: one platform (vSphere, 1,400 sample VMs) plus the daily golden-image and
report assets, materialised once to S3 and once to local disk from the same estate.
"""

from __future__ import annotations

import json

import boto3
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from qlrf.cli import main as cli_main
from qlrf.scoring.report import report_text
from qlrf.views import drift, overview
from qlrf.views.base import Scope
from qlrf.warehouse import Warehouse
from tests.helpers import materialize_day
from tests.servers.moto_server import start_moto_thread, use_loopback

pytestmark = pytest.mark.slow

DAY = "2026-11-20"
BUCKET = "qlrf-warehouse"
PLATFORM = "vsphere"
# Columns that record when the run happened (wall clock), so two runs a few seconds apart differ there.
WALL_CLOCK = ("discovered_at",)


def relative_files(wh: Warehouse) -> list[str]:
    """Every partition file under the warehouse root, relative to it (no staging or temporary names)."""
    infos = wh.fs.get_file_info(pafs.FileSelector(wh.base, recursive=True))
    return sorted(i.path[len(wh.base) + 1:] for i in infos if i.type == pafs.FileType.File and i.base_name == "part.parquet")


def sbom_json(capsys, monkeypatch, root: str) -> list[dict]:
    monkeypatch.setenv("QLRF_WAREHOUSE", root)
    assert cli_main(["sbom", "query", "openssl@<3.0.3", "--date", DAY, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_daily_graph_on_s3_reads_back_equal_to_local_disk(tmp_path, monkeypatch, capsys):
    estate = tmp_path / "estate"
    with start_moto_thread(default_amis=False) as url:
        use_loopback(monkeypatch, url, str(tmp_path))
        monkeypatch.setenv("QLRF_S3_ENDPOINT_URL", url)
        monkeypatch.setenv("QLRF_S3_REGION", "us-east-1")
        boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=BUCKET)
        root = f"s3://{BUCKET}/wh"

        on_s3 = materialize_day(root, estate, DAY, platforms=(PLATFORM,))
        on_disk = materialize_day(str(tmp_path / "local"), estate, DAY, platforms=(PLATFORM,))
        assert all(r.success for r in on_s3 + on_disk)

        s3, local = Warehouse(root), Warehouse(str(tmp_path / "local"))
        assert not s3.local and s3.exists("inventory", DAY, PLATFORM)
        files = relative_files(s3)
        assert files == relative_files(local) and len(files) > 10
        for path in files:  # same rows in every partition (schema metadata carries run ids: not compared)
            with s3.fs.open_input_file(f"{s3.base}/{path}") as a, local.fs.open_input_file(f"{local.base}/{path}") as b:
                left, right = pq.ParquetFile(a).read(), pq.ParquetFile(b).read()
            schemas = [(f.name, str(f.type), f.nullable) for f in left.schema], [(f.name, str(f.type), f.nullable) for f in right.schema]
            assert schemas[0] == schemas[1], path
            # pandas' equals: NaN where NaN is (drift_trends has NaN slopes on a one-day history)
            clock = [c for c in WALL_CLOCK if c in left.column_names]
            left, right = left.drop_columns(clock), right.drop_columns(clock)
            diff = [c for c in left.column_names if not left[c].to_pandas().equals(right[c].to_pandas())]
            assert diff == [], path

        # The report, a dashboard loader and the SBOM command read S3 and say what they say on disk.
        remote_report = report_text(s3, DAY)
        assert f"Results: {root}" in remote_report  # the report says where its data lives; otherwise the same
        assert remote_report.replace(root, "<warehouse>") == report_text(local, DAY).replace(local.root, "<warehouse>")
        scope = Scope(day=DAY, platform=PLATFORM)
        assert drift.heatmap(s3, scope).equals(drift.heatmap(local, scope))
        assert overview.fleet_row(s3, Scope(day=DAY)).equals(overview.fleet_row(local, Scope(day=DAY)))
        remote_hits = sbom_json(capsys, monkeypatch, root)
        assert remote_hits and remote_hits == sbom_json(capsys, monkeypatch, str(tmp_path / "local"))
        # Nothing left behind in staging after a whole day of replacements.
        objects = boto3.client("s3", endpoint_url=url, region_name="us-east-1").list_objects_v2(Bucket=BUCKET, Prefix="wh/_staging/")
        assert [o["Key"] for o in objects.get("Contents", []) if not o["Key"].endswith("/")] == []
