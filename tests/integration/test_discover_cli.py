"""`qlrf discover` runs one live connector outside Dagster: progress on stderr, Parquet out."""

from __future__ import annotations

import subprocess
import sys

import boto3
import pyarrow.parquet as pq

from tests.servers.moto_server import FAKE_CREDENTIALS, loopback_env, seed_region, start_moto_thread


def test_discover_aws_writes_inventory_snapshots_and_facts(tmp_path):
    with start_moto_thread(default_amis=False) as endpoint:
        session = boto3.Session(
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name="eu-west-1",
        )
        seeded = seed_region(session, "eu-west-1", instances=6, endpoint=endpoint)
        env = loopback_env(endpoint, str(tmp_path))
        env.update(QLRF_AWS_REGIONS="eu-west-1,eu-central-1", QLRF_HOME=str(tmp_path / "home"))
        out = tmp_path / "out"
        proc = subprocess.run([sys.executable, "-m", "qlrf.cli", "discover", "--platform", "aws", "--out", str(out)],
                              capture_output=True, text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    inventory = pq.read_table(out / "aws-inventory.parquet").to_pylist()
    assert sorted(r["asset_id"] for r in inventory) == sorted(seeded.instance_ids + seeded.asg_members)
    assert {r["region"] for r in inventory} == {"eu-west-1"}
    assert pq.read_table(out / "aws-snapshots.parquet").num_rows == len(seeded.newest_snapshot)
    groups = pq.read_table(out / "aws-scaling_groups.parquet").to_pylist()
    assert [g["group_name"] for g in groups] == [seeded.asg_name]
    assert "eu-west-1" in proc.stderr and "VMs" in proc.stdout
    assert FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in proc.stdout + proc.stderr
