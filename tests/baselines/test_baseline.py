"""Golden-image contracts: the sample ships signed contracts; unsigned, tampered and invalid ones are rejected."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml

from qlrf.baselines import signing
from qlrf.baselines.contracts import ContractError, load_contracts, registry_table
from qlrf.inventory.sample import FAMILIES, generate_estate
from tests.baselines.estates import edit_contract, failure_message, materialize_golden, problems

DAY = date(2026, 11, 20)
SMALL = {"aws": 20, "azure": 10, "gcp": 10, "vsphere": 10}


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("estate")
    generate_estate(path, DAY, counts=SMALL)
    return path


@pytest.fixture()
def estate(sample, tmp_path) -> Path:
    """A private copy of the sample estate that a test may damage."""
    return Path(shutil.copytree(sample, tmp_path / "estate"))


def _pub(estate: Path) -> bytes:
    return (estate / "keys" / "cosign.pub").read_bytes()


def test_sample_ships_signed_contracts(sample):
    golden = sample / "golden"
    assert sorted(p.name for p in golden.glob("*.yaml*")) == sorted(
        [f"{f}.yaml" for f in FAMILIES] + [f"{f}.yaml.sig" for f in FAMILIES]
    )
    assert sorted(p.name for p in (sample / "keys").iterdir()) == ["cosign.key", "cosign.pub"]
    fingerprint = signing.fingerprint(_pub(sample))
    families = load_contracts(golden, [_pub(sample)])
    assert [f.family for f in families] == sorted(FAMILIES)
    assert {f.signed_by for f in families} == {fingerprint}
    assert all(f.source == golden / f"{f.family}.yaml" for f in families)
    assert all(len(f.versions) == 8 for f in families)
    table = registry_table(families, datetime(2026, 11, 20, 23, tzinfo=UTC))
    assert table.num_rows > 0
    assert set(table.column("platform").to_pylist()) == {"aws", "azure", "gcp", "vsphere"}


def test_regenerating_reuses_the_estate_key(sample, tmp_path):
    shutil.copytree(sample / "keys", tmp_path / "keys")
    generate_estate(tmp_path, DAY, counts=SMALL)
    assert (tmp_path / "keys" / "cosign.pub").read_bytes() == _pub(sample)
    assert len(load_contracts(tmp_path / "golden", [_pub(sample)])) == len(FAMILIES)


def test_tampered_contract_is_rejected_naming_the_file(estate):
    path = estate / "golden" / "ubuntu-22.04.yaml"
    path.write_text(path.read_text().replace("channel: staging", "channel: prod", 1))
    with pytest.raises(ContractError) as err:
        load_contracts(estate / "golden", [_pub(estate)])
    message = str(err.value)
    assert str(path) in message
    assert "signature rejected (ubuntu-22.04.yaml.sig)" in message
    assert "content changed after signing" in message


def test_unsigned_contract_is_rejected(estate):
    (estate / "golden" / "rhel-9.yaml.sig").unlink()
    with pytest.raises(ContractError, match=r"rhel-9.yaml: unsigned: no detached signature rhel-9.yaml.sig"):
        load_contracts(estate / "golden", [_pub(estate)])


def test_contract_signed_by_an_untrusted_key_is_rejected(estate):
    stranger = signing.generate_key_pair()
    signing.sign_file(estate / "golden" / "debian-12.yaml", stranger.private_pem)
    with pytest.raises(ContractError, match=r"debian-12.yaml: signature rejected"):
        load_contracts(estate / "golden", [_pub(estate)])
    # ...and accepted once that key is trusted too
    families = load_contracts(estate / "golden", [_pub(estate), stranger.public_pem])
    assert {f.family: f.signed_by for f in families}["debian-12"] == stranger.fingerprint


def test_keys_come_from_the_environment_at_call_time(estate, tmp_path, monkeypatch):
    monkeypatch.delenv("QLRF_COSIGN_PUBLIC_KEYS", raising=False)
    with pytest.raises(ContractError, match="no trusted public keys .*QLRF_COSIGN_PUBLIC_KEYS"):
        load_contracts(estate / "golden")
    monkeypatch.setenv("QLRF_COSIGN_PUBLIC_KEYS", str(estate / "keys" / "cosign.pub"))
    assert len(load_contracts(estate / "golden")) == len(FAMILIES)
    monkeypatch.setenv("QLRF_COSIGN_PUBLIC_KEYS", str(tmp_path / "nope.pub"))
    with pytest.raises(ContractError, match=r"QLRF_COSIGN_PUBLIC_KEYS: cannot read .*nope.pub"):
        load_contracts(estate / "golden")


def test_unsigned_contracts_load_only_when_signatures_are_not_required(estate):
    for sig in (estate / "golden").glob("*.sig"):
        sig.unlink()
    families = load_contracts(estate / "golden", [], require_signatures=False)
    assert len(families) == len(FAMILIES) and {f.signed_by for f in families} == {None}


def test_a_bad_signature_is_never_ignored_even_when_not_required(estate):
    path = estate / "golden" / "windows-2022.yaml"
    path.write_text(path.read_text() + "\n# edited\n")
    with pytest.raises(ContractError, match="windows-2022.yaml: signature rejected"):
        load_contracts(estate / "golden", [_pub(estate)], require_signatures=False)


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (lambda d: d["versions"][0].update(channel="beta"), "versions.0.channel", "Input should be 'dev', 'staging' or 'prod'"),
        (lambda d: d["versions"][1].pop("released_at"), "versions.1.released_at", "Field required"),
        (lambda d: d["versions"][2]["images"]["aws"].update({"eu-west-2": "img-123"}), "versions.2.images", "is not an AMI id"),
        (lambda d: d["versions"][0]["images"].update(aws={"*": "ami-0123456789abcdef0"}), "versions.0.images", "AMIs are regional"),
        (lambda d: d["versions"][0]["images"].update(gcp={"*": "ubuntu-latest"}), "versions.0.images", "not a GCE image self link"),
        (lambda d: d["versions"][0]["images"].update(azure={"*": "ubuntu"}), "versions.0.images", "marketplace URN"),
        (lambda d: d["versions"][0]["images"].update(ibm={"*": "x"}), "versions.0.images", "unknown platform(s) ['ibm']"),
        (lambda d: d["versions"][3].update(sbom="/etc/sbom.json"), "versions.3.sbom", "SPDX JSON"),
        (lambda d: d["versions"][3].update(parent="9.9.9"), "(document)", "versions.3.parent: '9.9.9' is not a version of ubuntu-22.04"),
        (lambda d: d["versions"][2]["revoked"].update(date="2020-01-01"), "versions.2", "is before released_at"),
        (lambda d: d["versions"].append(dict(d["versions"][0])), "versions", "duplicate versions"),
        (lambda d: d.update(owner="me"), "owner", "Extra inputs are not permitted"),
        (lambda d: d.pop("serial"), "serial", "Field required (a positive integer the issuer raises"),
        (lambda d: d.update(serial=0), "serial", "greater than or equal to 1"),
        (lambda d: d["versions"][0].pop("sbom_sha256"), "versions.0", "sbom_sha256: required with sbom"),
        (lambda d: d["versions"][0].update(sbom_sha256="abc"), "versions.0.sbom_sha256", "should match pattern"),
        (lambda d: d.update(unrevoke=[{"version": "9.9.9", "reason": "x"}]), "(document)", "unrevoke.0: '9.9.9' is not a version"),
        (lambda d: d.update(unrevoke=[{"version": d["versions"][2]["version"], "reason": "x"}]), "(document)", "is still revoked in this contract"),
        (lambda d: d.update(versions=[]), "(document)", "versions: at least one version (or retire the family"),
    ],
)
def test_invalid_contract_names_file_and_field(estate, change, field, reason):
    path = edit_contract(estate, "ubuntu-22.04", change)  # validly signed: only the schema can reject it
    with pytest.raises(ContractError) as err:
        load_contracts(estate / "golden", [_pub(estate)])
    message = str(err.value)
    assert message.startswith(f"{path}: invalid golden-image contract: ")
    assert f"{field}: " in message and reason in message


def test_sample_contracts_carry_serials_and_pin_their_sboms(sample):
    families = load_contracts(sample / "golden", [_pub(sample)])
    assert {f.serial for f in families} == {202611200600}
    for fam in families:
        for ver in fam.versions:
            assert ver.sbom_sha256 == hashlib.sha256((sample / "golden" / ver.sbom).read_bytes()).hexdigest()


def test_an_estate_from_before_serials_is_regenerated(sample, tmp_path):
    from qlrf.inventory.sample import ensure_estate

    old = tmp_path / "estates" / DAY.isoformat()
    shutil.copytree(sample, old)
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["contracts_format"]  # as an older release wrote it
    (old / "manifest.json").write_text(json.dumps(manifest))
    edit_contract(old, "rhel-9", lambda d: d.pop("serial"))
    assert ensure_estate(tmp_path / "estates", DAY) == old
    assert json.loads((old / "manifest.json").read_text())["contracts_format"] == 2
    assert {f.serial for f in load_contracts(old / "golden", [_pub(old)])} == {202611200600}
    assert [p.name for p in (tmp_path / "estates").iterdir()] == [DAY.isoformat()]


def test_a_retired_family_loads_and_has_no_registry_rows(estate):
    edit_contract(estate, "rhel-9", lambda d: d.update(retired=True, versions=[], serial=d["serial"] + 1))
    families = load_contracts(estate / "golden", [_pub(estate)])
    assert next(f for f in families if f.family == "rhel-9").retired
    table = registry_table(families, datetime(2026, 11, 20, 23, tzinfo=UTC))
    assert "rhel-9" not in set(table.column("family").to_pylist()) and table.num_rows > 0


def test_a_tampered_sbom_is_refused_naming_it(estate):
    sbom = estate / "golden" / "sbom" / "debian-12-2.1.3.spdx.json"
    sbom.write_text(sbom.read_text().replace("openssl", "libressl"))
    with pytest.raises(ContractError, match=r"debian-12.yaml: SBOM of 2.1.3 does not match its signed sbom_sha256: .*debian-12-2.1.3.spdx.json"):
        load_contracts(estate / "golden", [_pub(estate)])


def test_a_missing_sbom_is_refused_naming_it(estate):
    (estate / "golden" / "sbom" / "rhel-9-2.0.1.spdx.json").unlink()
    with pytest.raises(ContractError, match=r"rhel-9.yaml: SBOM of 2.0.1 missing: .*rhel-9-2.0.1.spdx.json"):
        load_contracts(estate / "golden", [_pub(estate)])


def test_inline_signature_field_is_rejected(estate):
    path = edit_contract(estate, "rhel-9", lambda d: d.update(signature="MEUCIQ..."))
    with pytest.raises(ContractError, match=r"rhel-9.yaml: invalid golden-image contract: signature: inline signatures are not supported"):
        load_contracts(estate / "golden", [_pub(estate)])
    assert path.exists()


def test_family_must_match_the_file_name(estate):
    edit_contract(estate, "debian-12", lambda d: d.update(family="debian-13"))
    with pytest.raises(ContractError, match=r"debian-12.yaml: invalid golden-image contract: family: 'debian-13' must match"):
        load_contracts(estate / "golden", [_pub(estate)])


def test_broken_yaml_is_rejected_after_the_signature(estate):
    path = estate / "golden" / "debian-12.yaml"
    path.write_text("family: [unclosed\n")
    signing.sign_file(path, (estate / "keys" / "cosign.key").read_bytes())
    with pytest.raises(ContractError, match=r"debian-12.yaml: cannot read YAML"):
        load_contracts(estate / "golden", [_pub(estate)])


def test_empty_directory_is_rejected(tmp_path, sample):
    with pytest.raises(ContractError, match="no golden-image contracts"):
        load_contracts(tmp_path, [_pub(sample)])


# --- the golden_images asset: verified, or nothing written -------------------------------------------


@pytest.fixture()
def estate_root(sample, tmp_path, isolated_env):
    """An estate root whose DAY and DAY-1 are (small) sample estates, so ensure_estate reuses them."""
    root = tmp_path / "estates"
    shutil.copytree(sample, root / DAY.isoformat())
    generate_estate(root / "2026-11-19", date(2026, 11, 19), counts=SMALL)
    return root


@pytest.mark.slow
def test_golden_images_asset_verifies_with_the_sample_key(estate_root, tmp_path):
    from qlrf.warehouse import Warehouse

    result = materialize_golden(tmp_path / "wh", estate_root, DAY)
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert {"has_rows", "unique_keys", "verified_signatures"} <= set(checks)
    check = checks["verified_signatures"]
    assert check.passed
    assert check.metadata["contracts"].value == 4 and check.metadata["verified"].value == 4
    fingerprint = signing.fingerprint((estate_root / DAY.isoformat() / "keys" / "cosign.pub").read_bytes())
    assert check.metadata["keys"].value == f"{signing.short(fingerprint)}: 4"
    assert check.metadata["key_source"].value.startswith("sample estate key ")
    assert Warehouse(str(tmp_path / "wh")).exists("golden_images", DAY)


@pytest.mark.slow
def test_golden_images_asset_rejects_a_tampered_contract_and_writes_nothing(estate_root, tmp_path):
    from qlrf.warehouse import Warehouse

    warehouse = Warehouse(str(tmp_path / "wh"))
    assert materialize_golden(tmp_path / "wh", estate_root, date(2026, 11, 19)).success  # yesterday's baseline
    path = estate_root / DAY.isoformat() / "golden" / "ubuntu-22.04.yaml"
    path.write_text(path.read_text().replace("CVE-2026-31337", "nothing to see"))
    result = materialize_golden(tmp_path / "wh", estate_root, DAY)
    assert not result.success
    message = failure_message(result)
    assert "golden-image contracts rejected, previous baseline stays in force" in message
    assert f"{path}: signature rejected (ubuntu-22.04.yaml.sig)" in message
    assert not warehouse.exists("golden_images", DAY)
    assert warehouse.exists("golden_images", date(2026, 11, 19))
    assert not [c for c in result.get_asset_check_evaluations() if c.passed]


@pytest.mark.slow
def test_configured_keys_take_precedence_over_the_sample_key(estate_root, tmp_path, monkeypatch):
    stranger = tmp_path / "stranger.pub"
    stranger.write_bytes(signing.generate_key_pair().public_pem)
    monkeypatch.setenv("QLRF_COSIGN_PUBLIC_KEYS", str(stranger))
    result = materialize_golden(tmp_path / "wh", estate_root, DAY)
    assert not result.success
    assert "signature rejected" in failure_message(result)
    monkeypatch.setenv("QLRF_COSIGN_PUBLIC_KEYS", f"{stranger},{estate_root / DAY.isoformat() / 'keys' / 'cosign.pub'}")
    result = materialize_golden(tmp_path / "wh", estate_root, DAY)
    assert result.success
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "verified_signatures")
    assert check.metadata["key_source"].value == "QLRF_COSIGN_PUBLIC_KEYS"


@pytest.mark.slow
def test_a_configured_golden_dir_never_trusts_a_key_lying_next_to_it(estate_root, tmp_path, monkeypatch):
    monkeypatch.setenv("QLRF_GOLDEN_DIR", str(estate_root / DAY.isoformat() / "golden"))
    result = materialize_golden(tmp_path / "wh", estate_root, DAY)
    assert not result.success
    assert "no trusted public keys: set QLRF_COSIGN_PUBLIC_KEYS" in failure_message(result)


# --- the golden_images asset: never replaced by an emptier, older or laxer registry -----------------

YESTERDAY = date(2026, 11, 19)


def _all_versions_in_the_future(doc: dict) -> None:
    for ver in doc["versions"]:
        ver["released_at"] = "2027-06-01T00:00:00Z"
        ver.pop("revoked", None)
    doc["serial"] += 1


def _future_dated(estate_root: Path) -> list[Path]:
    """The reproduced attack: every contract validly signed, every version released next year."""
    return [edit_contract(estate_root / DAY.isoformat(), family, _all_versions_in_the_future) for family in sorted(FAMILIES)]


@pytest.mark.slow
def test_future_dated_contracts_fail_the_run_and_keep_the_previous_baseline(estate_root, tmp_path):
    from qlrf.baselines.state import in_force
    from qlrf.scoring.stages import baseline_day
    from qlrf.warehouse import Warehouse

    warehouse = Warehouse(str(tmp_path / "wh"))
    assert materialize_golden(tmp_path / "wh", estate_root, YESTERDAY).success
    paths = _future_dated(estate_root)
    result = materialize_golden(tmp_path / "wh", estate_root, DAY)
    assert not result.success
    lines = failure_message(result).splitlines()
    assert lines[0].endswith("Failure: golden-image registry refused, the baseline of 2026-11-19 stays in force:")
    assert lines[1].startswith("- the new registry is empty")
    assert sorted(problems(result)[1:]) == sorted(
        f"- {p}: family {p.stem} lost: no version visible (released in the future?); "
        f"{yaml.safe_load(p.read_text())['versions'][-1]['version']} is in force since 2026-11-19"
        for p in paths
    )
    assert not warehouse.exists("golden_images", DAY)
    assert in_force(warehouse, DAY).day == baseline_day(warehouse, DAY) == "2026-11-19"


@pytest.mark.slow
def test_drift_keeps_measuring_against_the_previous_baseline_after_the_attack(estate_root, tmp_path):
    from qlrf.warehouse import Warehouse
    from tests.helpers import materialize_day

    warehouse = Warehouse(str(tmp_path / "wh"))
    assert materialize_golden(tmp_path / "wh", estate_root, YESTERDAY).success
    _future_dated(estate_root)
    golden, aws, _report = materialize_day(tmp_path / "wh", estate_root, DAY.isoformat(), platforms=("aws",))
    assert not golden.success and aws.success
    assert warehouse.run_metadata("vm_drift", DAY, "aws")["baseline_date"] == "2026-11-19"
    # Measured against yesterday's registry, the VMs read exactly as against an honest one for today,
    # not as "unknown" (what the empty registry made of them).
    honest_root = tmp_path / "honest"
    shutil.copytree(estate_root / "2026-11-19", honest_root / "2026-11-19")
    generate_estate(honest_root / DAY.isoformat(), DAY, counts=SMALL)
    materialize_day(tmp_path / "honest-wh", honest_root, DAY.isoformat(), platforms=("aws",))
    def statuses(root):
        return sorted(Warehouse(str(root)).read("vm_drift", DAY, "aws").select(["asset_id", "status"]).to_pylist(), key=str)
    assert statuses(tmp_path / "wh") == statuses(tmp_path / "honest-wh")
    assert {r["status"] for r in statuses(tmp_path / "wh")} >= {"current", "behind"}


def _replay_older(estate: Path, family: str, older: date) -> Path:
    """Swap in `family`'s contract as the same key signed it for an earlier day (a genuine old file)."""
    old = estate.parent / f"replay-{older.isoformat()}"
    shutil.copytree(estate / "keys", old / "keys")
    generate_estate(old, older, counts=SMALL)
    for name in (f"{family}.yaml", f"{family}.yaml.sig"):
        shutil.copyfile(old / "golden" / name, estate / "golden" / name)
    return estate / "golden" / f"{family}.yaml"


@pytest.mark.slow
def test_an_older_signed_contract_replayed_fails_the_run_naming_both_serials(estate_root, tmp_path):
    from qlrf.warehouse import Warehouse

    assert materialize_golden(tmp_path / "wh", estate_root, YESTERDAY).success
    path = _replay_older(estate_root / DAY.isoformat(), "ubuntu-22.04", date(2026, 11, 18))
    result = materialize_golden(tmp_path / "wh", estate_root, DAY)
    assert not result.success
    assert problems(result) == [
        f"- {path}: replayed contract refused: serial 202611180600 is older than serial 202611190600 in force since 2026-11-19"
    ]
    assert not Warehouse(str(tmp_path / "wh")).exists("golden_images", DAY)


@pytest.mark.slow
def test_a_deleted_contract_fails_the_run_and_a_signed_retirement_passes(estate_root, tmp_path):
    assert materialize_golden(tmp_path / "wh", estate_root, YESTERDAY).success
    golden = estate_root / DAY.isoformat() / "golden"
    (golden / "windows-2022.yaml").rename(tmp_path / "windows-2022.yaml")
    (golden / "windows-2022.yaml.sig").unlink()
    result = materialize_golden(tmp_path / "wh", estate_root, DAY)
    assert not result.success
    assert problems(result) == [
        "- family windows-2022 deleted: its contract is gone (serial 202611190600 in force since 2026-11-19); "
        "retire a family with a signed contract carrying `retired: true`"
    ]
    (tmp_path / "windows-2022.yaml").rename(golden / "windows-2022.yaml")
    edit_contract(estate_root / DAY.isoformat(), "windows-2022", lambda d: d.update(retired=True, versions=[]))
    result = materialize_golden(tmp_path / "wh", estate_root, DAY)
    assert result.success
    materialization = result.asset_materializations_for_node("golden_images")[0]
    assert materialization.metadata["baseline_replaced"].value == "2026-11-19"
