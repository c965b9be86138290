"""The CLI as a newcomer meets it: one-line date errors, an approvals table with a header, an SBOM
answer that starts with its summary (issue 11, item 7)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date

import pytest

from qlrf import cli
from qlrf.baselines.sbom import exposure_summary
from qlrf.textable import table_lines

TODAY = date(2026, 11, 30)


def _qlrf(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    return subprocess.run([sys.executable, "-m", "qlrf.cli", *args], capture_output=True, text=True,
                          env={**base, **env}, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("value", ["2026-13-45", "2026-02-30", "yesterday", "../../etc"])
def test_qlrf_run_with_a_bad_date_is_one_line_and_exit_2(value, tmp_path):
    proc = _qlrf("run", "--date", value, QLRF_HOME=str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: argument --date:") and value in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_pipelines_run_with_a_bad_date_is_one_line(capsys):
    """`make run`'s own entry point used to print argparse's usage block above the error."""
    from pipelines import run

    with pytest.raises(SystemExit) as exit_info:
        run.main(["--date", "2026-13-45"], today=TODAY)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "not a date on the calendar" in err and "usage:" not in err


def test_estate_generate_with_a_bad_date_is_one_line(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["estate", "generate", "--out", str(tmp_path / "e"), "--date", "2026-13-45"], today=TODAY)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and "'2026-13-45' is not a date" in err
    assert not (tmp_path / "e").exists()


def test_a_bad_partitions_start_is_one_line_naming_the_variable(capsys, monkeypatch):
    monkeypatch.setenv("QLRF_PARTITIONS_START", "2026-02-30")
    assert cli.main(["report", "--date", "2026-11-20"], today=TODAY) == 2
    err = capsys.readouterr().err
    assert err == "error: QLRF_PARTITIONS_START: '2026-02-30' is not a date on the calendar\n"


def test_the_date_window_follows_the_configured_partitions_start(capsys, monkeypatch, isolated_env):
    monkeypatch.setenv("QLRF_PARTITIONS_START", "2026-11-01")
    with pytest.raises(SystemExit):
        cli.main(["report", "--date", "2026-10-31"], today=TODAY)
    assert "before 2026-11-01, the first daily partition" in capsys.readouterr().err
    monkeypatch.setenv("QLRF_PARTITIONS_START", "2026-03-01")
    assert cli.main(["report", "--date", "2026-03-01"], today=TODAY) == 2  # accepted; nothing materialised yet
    assert "qlrf run --date 2026-03-01" in capsys.readouterr().err


# --- approvals list ----------------------------------------------------------------------------------


def test_table_columns_are_as_wide_as_their_content():
    lines = table_lines(("A", "LONG HEADER", "N"), [("x" * 30, None, 7), ("y", "short", 12345)], right=[2])
    assert lines == [
        "A                               LONG HEADER      N",
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx  -                7",
        "y                               short        12345",
    ]
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        table_lines(("A", "B", "C"), [("1", "2")])


def test_approvals_list_has_a_header_and_columns_that_never_run_together(capsys, monkeypatch, isolated_env):
    from qlrf.remediation.approvals import TaskStore
    from qlrf.remediation.audit import AuditLog
    from tests.remediation.support import PENDING, make_plan

    monkeypatch.delenv("QLRF_AUDIT_DIR")
    long_requester = "sensor:drift_breach_for_a_very_long_scope_name"  # longer than the old 24-character column
    task = TaskStore(audit=AuditLog()).propose(make_plan().sealed(), long_requester, PENDING)
    assert cli.main(["approvals", "list"], today=TODAY) == 0
    out = capsys.readouterr().out.splitlines()
    assert re.split(r"\s{2,}", out[0]) == ["TASK", "STATE", "KIND", "ENV", "PLATFORM", "SITE", "RISK", "AUTONOMY",
                                          "REQUESTED BY", "EXPIRES", "PLAN HASH"]
    cells = re.split(r"\s{2,}", out[1])
    assert cells[0] == task.id and cells[2] == "patch" and cells[8] == long_requester and cells[10] == task.plan_hash
    # Every column starts where its header starts.
    assert out[1].index(long_requester) == out[0].index("REQUESTED BY")
    assert out[1].index(task.plan_hash) == out[0].index("PLAN HASH")

    assert cli.main(["approvals", "list", "--json"], today=TODAY) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in listed] == [task.id] and "plan_yaml" not in listed[0]
    assert listed[0]["requested_by"] == long_requester


# --- sbom query --------------------------------------------------------------------------------------


def test_exposure_summary_counts_vms_images_sites_and_platforms():
    rows = [
        {"platform": "aws", "site": "lon1", "family": "ubuntu", "image_version": "1.0"},
        {"platform": "aws", "site": "fra1", "family": "ubuntu", "image_version": "1.0"},
        {"platform": "gcp", "site": None, "family": "rhel", "image_version": "2.0"},
    ]
    summary = exposure_summary(rows)
    assert (summary["vms"], summary["images"], summary["sites"], summary["platforms"]) == (3, 2, 2, 2)
    assert summary["by_image"] == [(("ubuntu", "1.0"), 2), (("rhel", "2.0"), 1)]


def test_sbom_query_summarises_first_and_caps_the_rows(materialized_day, monkeypatch, capsys):
    warehouse, day = materialized_day
    monkeypatch.setenv("QLRF_WAREHOUSE", str(warehouse))
    assert cli.main(["sbom", "query", "openssl", "--date", day, "--json"], today=TODAY) == 0
    every = json.loads(capsys.readouterr().out)
    expected = exposure_summary(every)
    assert expected["vms"] > 1000  # the sample: most images ship openssl

    assert cli.main(["sbom", "query", "openssl", "--date", day], today=TODAY) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"openssl on {day}: {expected['vms']} VM(s) on {expected['images']} image version(s) "
                      f"across {expected['sites']} site(s) and {expected['platforms']} platform(s)")
    header = next(i for i, line in enumerate(out) if line.startswith("PLATFORM"))
    assert len(out) - header - 2 == 50  # header + 50 rows + the "not shown" line
    assert out[-1].startswith(f"... {expected['vms'] - 50} more VM(s) not shown: --all")

    assert cli.main(["sbom", "query", "openssl", "--date", day, "--limit", "5"], today=TODAY) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"... {expected['vms'] - 5} more VM(s)")
    assert cli.main(["sbom", "query", "openssl", "--date", day, "--all"], today=TODAY) == 0
    out = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(out) if line.startswith("PLATFORM"))
    assert len(out) - header - 1 == expected["vms"] and "not shown" not in out[-1]
