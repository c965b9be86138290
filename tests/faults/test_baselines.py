"""Fault catalogue, class "baselines": attempts to empty, roll back or loosen the golden-image baseline.

Each test is one attack, staged on a sample estate whose previous day's registry is in force. It
holds when the golden_images run fails, names the problem, writes nothing for the day, and the
previous registry is still the one drift measures against.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from qlrf.baselines import signing
from qlrf.inventory.sample import generate_estate
from tests.baselines.estates import edit_contract, failure_message, materialize_golden, problems

pytestmark = [pytest.mark.fault, pytest.mark.slow]

DAY, YESTERDAY, OLDER = date(2026, 11, 20), date(2026, 11, 19), date(2026, 11, 18)
SMALL = {"aws": 10, "azure": 5, "gcp": 5, "vsphere": 5}
FAMILY = "ubuntu-22.04"


@pytest.fixture(scope="module")
def accepted(tmp_path_factory) -> Path:
    """Yesterday's and today's estates (one signing key) and a warehouse with yesterday's registry."""
    base = tmp_path_factory.mktemp("faults-baselines")
    generate_estate(base / "estates" / YESTERDAY.isoformat(), YESTERDAY, counts=SMALL)
    for day in (DAY, OLDER):
        shutil.copytree(base / "estates" / YESTERDAY.isoformat() / "keys", base / "estates" / day.isoformat() / "keys")
        generate_estate(base / "estates" / day.isoformat(), day, counts=SMALL)
    shutil.move(base / "estates" / OLDER.isoformat(), base / "older")  # what an attacker kept, not an estate day
    assert materialize_golden(base / "wh", base / "estates", YESTERDAY).success
    return base


@pytest.fixture()
def site(accepted, tmp_path, isolated_env) -> Path:
    """A private copy of `accepted` for one attack."""
    return Path(shutil.copytree(accepted, tmp_path / "site"))


def today(site: Path) -> Path:
    return site / "estates" / DAY.isoformat()


def attempt(site: Path):
    return materialize_golden(site / "wh", site / "estates", DAY)


def assert_held(site: Path, result, *expected: str) -> None:
    """The run failed, said why (each `expected` fragment in its message), wrote nothing for today,
    and yesterday's registry is still the baseline in force."""
    from qlrf.baselines.state import in_force
    from qlrf.warehouse import Warehouse

    assert not result.success, "the attack was accepted"
    message = failure_message(result)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    wh = Warehouse(str(site / "wh"))
    assert not wh.exists("golden_images", DAY)
    assert in_force(wh, DAY).day == YESTERDAY.isoformat()


def _raise_serial(doc: dict) -> None:
    doc["serial"] += 1


def test_future_dated_versions_cannot_empty_the_registry(site):
    for path in sorted((today(site) / "golden").glob("*.yaml")):
        def future(doc):
            for ver in doc["versions"]:
                ver["released_at"] = "2027-06-01T00:00:00Z"
                ver.pop("revoked", None)
            _raise_serial(doc)
        edit_contract(today(site), path.stem, future)
    assert_held(site, attempt(site), "the new registry is empty", f"family {FAMILY} lost: no version visible")


def test_replaying_an_older_signed_contract(site):
    for name in (f"{FAMILY}.yaml", f"{FAMILY}.yaml.sig"):
        shutil.copyfile(site / "older" / "golden" / name, today(site) / "golden" / name)
    assert_held(site, attempt(site), f"{FAMILY}.yaml: replayed contract refused: serial 202611180600 is older than serial 202611190600")


def test_replaying_yesterdays_serial_with_other_content(site):
    edit_contract(today(site), FAMILY, lambda d: d.update(serial=202611190600))
    assert_held(site, attempt(site), "serial 202611190600 is the one in force since 2026-11-19 but the content differs")


def test_deleting_a_family_contract(site):
    (today(site) / "golden" / "rhel-9.yaml").unlink()
    (today(site) / "golden" / "rhel-9.yaml.sig").unlink()
    assert_held(site, attempt(site), "family rhel-9 deleted", "retired: true")


def test_emptying_a_family_contract_without_retiring_it(site):
    path = edit_contract(today(site), "rhel-9", lambda d: d.update(versions=[]))
    assert_held(site, attempt(site), f"{path}: invalid golden-image contract", "retire the family with retired: true")


def test_dropping_a_revoked_version(site):
    def drop(doc):
        doc["versions"] = [v for v in doc["versions"] if "revoked" not in v]
        for i, ver in enumerate(doc["versions"]):
            ver["parent"] = doc["versions"][i - 1]["version"] if i else None
        _raise_serial(doc)
    edit_contract(today(site), FAMILY, drop)
    assert_held(site, attempt(site), f"revocation of {FAMILY} 2.2.0 dropped", "signed `unrevoke` entry")


def test_unrevoking_without_an_unrevoke_entry(site):
    edit_contract(today(site), FAMILY, lambda d: (d["versions"][2].pop("revoked"), _raise_serial(d)))
    assert_held(site, attempt(site), f"revocation of {FAMILY} 2.2.0 dropped")


def test_postponing_a_revocation_into_the_future(site):
    edit_contract(today(site), FAMILY, lambda d: (d["versions"][2]["revoked"].update(date="2027-01-01"), _raise_serial(d)))
    assert_held(site, attempt(site), f"revocation of {FAMILY} 2.2.0 dropped")


def test_moving_the_newest_version_backwards(site):
    def drop_newest(doc):
        doc["versions"] = doc["versions"][:-1]
        _raise_serial(doc)
    edit_contract(today(site), FAMILY, drop_newest)
    assert_held(site, attempt(site), "version moved backwards: newest 3.2.0 < 3.3.0 in force")


def test_hiding_the_newest_version_in_the_future(site):
    edit_contract(today(site), FAMILY, lambda d: (d["versions"][-1].update(released_at="2027-06-01T00:00:00Z"), _raise_serial(d)))
    assert_held(site, attempt(site), "version moved backwards: newest 3.2.0 < 3.3.0 in force")


def test_reviving_a_retired_family_with_its_old_contract(site):
    kept = site / "kept"
    kept.mkdir()
    for name in ("rhel-9.yaml", "rhel-9.yaml.sig"):
        shutil.copyfile(today(site) / "golden" / name, kept / name)
    edit_contract(today(site), "rhel-9", lambda d: (d.update(retired=True, versions=[]), _raise_serial(d)))
    assert attempt(site).success  # retiring is allowed, when signed
    later = date(2026, 11, 21)
    shutil.copytree(today(site), site / "estates" / later.isoformat())
    for name in ("rhel-9.yaml", "rhel-9.yaml.sig"):  # the family's contract from before its retirement
        shutil.copyfile(kept / name, site / "estates" / later.isoformat() / "golden" / name)
    result = materialize_golden(site / "wh", site / "estates", later)
    assert not result.success
    assert problems(result) == [
        f"- {site / 'estates' / later.isoformat() / 'golden' / 'rhel-9.yaml'}: replayed contract refused: "
        "serial 202611200600 is older than serial 202611200601 in force since 2026-11-20"
    ]


def test_tampering_with_an_sbom(site):
    sbom = today(site) / "golden" / "sbom" / f"{FAMILY}-2.1.0.spdx.json"
    sbom.write_text(sbom.read_text().replace("openssl", "libressl"))
    assert_held(site, attempt(site), f"SBOM of 2.1.0 does not match its signed sbom_sha256: {sbom}")


def test_deleting_an_sbom(site):
    sbom = today(site) / "golden" / "sbom" / f"{FAMILY}-2.1.0.spdx.json"
    sbom.unlink()
    assert_held(site, attempt(site), f"SBOM of 2.1.0 missing: {sbom}")


def test_repinning_a_tampered_sbom_without_re_signing(site):
    sbom = today(site) / "golden" / "sbom" / f"{FAMILY}-2.1.0.spdx.json"
    sbom.write_text(sbom.read_text().replace("openssl", "libressl"))
    import hashlib

    pin = hashlib.sha256(sbom.read_bytes()).hexdigest()
    path = edit_contract(today(site), FAMILY, lambda d: d["versions"][1].update(sbom_sha256=pin), resign=False)
    assert_held(site, attempt(site), f"{path}: signature rejected")


def test_removing_a_contract_signature(site):
    (today(site) / "golden" / f"{FAMILY}.yaml.sig").unlink()
    assert_held(site, attempt(site), f"{FAMILY}.yaml: unsigned")


def test_editing_a_signed_contract(site):
    path = today(site) / "golden" / f"{FAMILY}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["versions"][2].pop("revoked")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert_held(site, attempt(site), f"{path}: signature rejected")


def test_signing_with_an_untrusted_key(site):
    stranger = signing.generate_key_pair()
    path = edit_contract(today(site), FAMILY, _raise_serial, resign=False)
    signing.sign_file(path, stranger.private_pem)
    assert_held(site, attempt(site), f"{path}: signature rejected")
