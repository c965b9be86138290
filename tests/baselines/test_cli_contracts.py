"""`qlrf contracts verify`: serials shown, and --against-warehouse asks what golden_images would decide."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from qlrf.baselines.contracts import load_contracts
from qlrf.baselines.guard import review
from qlrf.cli import main
from qlrf.inventory.sample import generate_estate
from qlrf.warehouse import Warehouse
from tests.baselines.estates import edit_contract

DAY = date(2026, 11, 20)
SMALL = {"aws": 4, "azure": 2, "gcp": 2, "vsphere": 2}


@pytest.fixture()
def estate(tmp_path, isolated_env, monkeypatch) -> Path:
    """Today's sample contracts, and a warehouse whose baseline in force is exactly them."""
    path = tmp_path / "estate"
    generate_estate(path, DAY, counts=SMALL)
    monkeypatch.setenv("QLRF_WAREHOUSE", str(tmp_path / "wh"))
    wh = Warehouse(str(tmp_path / "wh"))
    families = load_contracts(path / "golden", [(path / "keys" / "cosign.pub").read_bytes()])
    accepted = review(families, wh, DAY, datetime(2026, 11, 20, 23, tzinfo=UTC))
    wh.write("golden_images", accepted.registry, DAY, metadata=accepted.metadata)
    return path


def _verify(estate: Path, *extra: str) -> int:
    return main(["contracts", "verify", str(estate / "golden"), "--key", str(estate / "keys" / "cosign.pub"), *extra])


def test_verify_shows_each_serial(estate, capsys):
    assert _verify(estate) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(": serial 202611200600, 8 versions, signed by sha256:" in line for line in lines)


def test_the_contracts_in_force_may_replace_themselves(estate, capsys):
    assert _verify(estate, "--against-warehouse", "--date", "2026-11-20") == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("ok for 2026-11-20: ") and out[-1].endswith(" registry rows may replace the baseline of 2026-11-20")


def test_a_contract_that_drops_a_revocation_is_refused_before_it_ships(estate, capsys):
    path = edit_contract(estate, "rhel-9", lambda d: (d["versions"][2].pop("revoked"), d.update(serial=d["serial"] + 1)))
    assert _verify(estate, "--against-warehouse", "--date", "2026-11-20") == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"error: {path}: revocation of rhel-9 2.2.1 dropped (revoked in force since 2026-11-20); un-revoke only with a signed `unrevoke` entry",
        "refused for 2026-11-20: 1 problem(s) against the baseline of 2026-11-20",
    ]


def test_a_bad_date_is_one_line(estate, capsys):
    assert _verify(estate, "--against-warehouse", "--date", "20-11-2026") == 2
    assert capsys.readouterr().err.splitlines()[-1] == "error: --date '20-11-2026': expected YYYY-MM-DD"


def test_a_malformed_contract_is_one_line_naming_file_and_field_exit_2(estate, capsys):
    path = edit_contract(estate, "rhel-9", lambda d: d.update(serial="not-a-number"))
    assert _verify(estate) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and str(path) in err[0] and "serial" in err[0]
