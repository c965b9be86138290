"""qlrf.sql: values travel as parameters or relations, never as SQL text."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qlrf import sql


def test_copy_to_parquet_takes_path_metadata_and_params_as_values(tmp_path):
    con = sql.connect()
    path = tmp_path / "it's; \"here\"" / "x.parquet"
    path.parent.mkdir()
    writer = sql.copy_to_parquet(con, "SELECT $v::VARCHAR AS v", {"qlrf.run": "{\"note\": \"o'brien\"}"}, {"v": "a'); --"})
    writer(str(path), None)
    assert pq.read_table(path).column("v").to_pylist() == ["a'); --"]
    assert pq.read_schema(path).metadata[b"qlrf.run"] == b"{\"note\": \"o'brien\"}"


def test_relation_reads_a_path_with_sql_and_glob_characters(tmp_path):
    path = tmp_path / "a'b [x] *?; c.parquet"
    pq.write_table(pa.table({"asset_id": ["i-1", "i-2"]}), path)
    con = sql.connect()
    sql.relation(con, "inv", str(path))
    assert sql.one(con, "SELECT count(*) FROM inv WHERE asset_id <> $skip", {"skip": "i-2"}) == (1,)


@pytest.mark.parametrize("name", ["x; DROP TABLE y", "a b", "1abc", ""])
def test_relation_names_must_be_identifiers(name):
    with pytest.raises(ValueError, match="not a SQL identifier"):
        sql.relation(sql.connect(), name, pa.table({"a": [1]}))


def test_metadata_keys_are_checked():
    writer = sql.copy_to_parquet(sql.connect(), "SELECT 1", {"k': 1}; --": "v"})
    with pytest.raises(ValueError, match="metadata key"):
        writer("/nonexistent/x.parquet", None)
