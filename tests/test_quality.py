"""Partition gates (qlrf/quality.py) and the warehouse refusing a partition before it replaces one."""

from __future__ import annotations

import pyarrow as pa
import pytest

from qlrf.quality import DEFAULT_MAX_SHRINK, Gate, PartitionRejected, max_shrink_from_env
from qlrf.warehouse import Warehouse

DAY = "2026-11-20"


def _table(ids: list[str | None], score: list[float] | None = None) -> pa.Table:
    cols = {"asset_id": pa.array(ids, pa.string())}
    if score is not None:
        cols["score"] = pa.array(score, pa.float64())
    return pa.table(cols)


def test_a_clean_partition_passes_and_replaces(tmp_path):
    wh = Warehouse(str(tmp_path))
    wh.write("t", _table(["a", "b"]), DAY, "aws", gate=Gate(keys=("asset_id",)))
    wh.write("t", _table(["a", "b", "c"]), DAY, "aws", gate=Gate(keys=("asset_id",), max_shrink=0.2))
    assert wh.num_rows("t", DAY, "aws") == 3


@pytest.mark.parametrize(("data", "gate", "expected"), [
    (_table([]), Gate(), "0 rows, at least 1 required"),
    (_table(["a", "a", "b"]), Gate(keys=("asset_id",)), "1 duplicated asset_id value(s), e.g. 'a'"),
    (_table(["a", None]), Gate(keys=("asset_id",)), "1 row(s) with a null asset_id"),
    (_table(["a"], [101.0]), Gate(ranges={"score": (0, 100)}), "1 row(s) with score outside [0, 100]"),
    (_table(["a"], [float("nan")]), Gate(ranges={"score": (0, 100)}), "score outside"),
    (_table(["a", "b"]), Gate(expected_rows=3), "2 rows, expected 3"),
    (_table(["a"]), Gate(schema=pa.schema([("asset_id", pa.string()), ("site", pa.string())])), "missing column(s) site"),
    (_table(["a"], [1.0]), Gate(schema=pa.schema([("asset_id", pa.string())])), "unexpected column(s) score"),
    (_table(["a"]), Gate(schema=pa.schema([("asset_id", pa.int64())])), "column asset_id is string, expected int64"),
])
def test_a_refused_partition_leaves_the_previous_one_byte_for_byte(tmp_path, data, gate, expected):
    wh = Warehouse(str(tmp_path))
    wh.write("t", _table(["x", "y"], [1.0, 2.0]) if "score" in data.schema.names else _table(["x", "y"]), DAY, "aws")
    before = (tmp_path / "t" / f"date={DAY}" / "platform=aws" / "part.parquet").read_bytes()
    with pytest.raises(PartitionRejected) as refused:
        wh.write("t", data, DAY, "aws", gate=gate)
    assert expected in str(refused.value) and "the previous partition stays in force" in str(refused.value)
    assert (tmp_path / "t" / f"date={DAY}" / "platform=aws" / "part.parquet").read_bytes() == before
    assert [p.name for p in (tmp_path / "t" / f"date={DAY}" / "platform=aws").iterdir()] == ["part.parquet"]


def test_much_smaller_than_yesterday_is_refused_and_says_how_to_allow_it(tmp_path):
    wh = Warehouse(str(tmp_path))
    wh.write("inventory", _table([f"i-{n}" for n in range(100)]), "2026-11-19", "aws")
    gate = Gate(max_shrink=0.2)
    with pytest.raises(PartitionRejected, match=r"75 rows, 25% fewer than the 100 of 2026-11-19 .*QLRF_MAX_SHRINK"):
        wh.write("inventory", _table([f"i-{n}" for n in range(75)]), DAY, "aws", gate=gate)
    assert not wh.exists("inventory", DAY, "aws")
    wh.write("inventory", _table([f"i-{n}" for n in range(81)]), DAY, "aws", gate=gate)  # 19 % fewer: accepted
    assert wh.num_rows("inventory", DAY, "aws") == 81


def test_the_same_partition_rewritten_is_compared_with_its_current_file(tmp_path):
    wh = Warehouse(str(tmp_path))
    wh.write("inventory", _table([f"i-{n}" for n in range(10)]), DAY, "aws")
    with pytest.raises(PartitionRejected, match=f"fewer than the 10 of the current {DAY} partition"):
        wh.write("inventory", _table(["i-0"]), DAY, "aws", gate=Gate(max_shrink=0.2))


def test_the_shrink_threshold_is_configuration():
    assert max_shrink_from_env({}) == DEFAULT_MAX_SHRINK
    assert max_shrink_from_env({"QLRF_MAX_SHRINK": "0.5"}) == 0.5
    for bad in ("2", "-0.1", "half"):
        with pytest.raises(ValueError, match="QLRF_MAX_SHRINK"):
            max_shrink_from_env({"QLRF_MAX_SHRINK": bad})
