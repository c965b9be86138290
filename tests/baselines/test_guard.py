"""The comparison of a new golden-image registry with the baseline in force, and how that state is kept."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from qlrf.baselines.contracts import ImageFamily, registry_table
from qlrf.baselines.guard import replacement_problems
from qlrf.baselines.state import BaselineState, FamilyState, InForce, in_force, partition_metadata
from qlrf.warehouse import Warehouse

AS_OF = datetime(2026, 11, 20, 23, tzinfo=UTC)


def _version(ver: str, days: int, *, revoked: bool = False) -> dict:
    doc = {"version": ver, "released_at": AS_OF - timedelta(days=days), "channel": "prod",
           "images": {"vsphere": {"*": f"tmpl-{ver}"}}}
    if revoked:
        doc["revoked"] = {"reason": "CVE", "date": (AS_OF - timedelta(days=1)).date()}
    return doc


def _family(name: str = "ubuntu", serial: int = 10, versions=None, **extra) -> ImageFamily:
    versions = versions if versions is not None else [_version("1.0.0", 60), _version("1.1.0", 30, revoked=True), _version("1.2.0", 5)]
    return ImageFamily.model_validate({"family": name, "os": "Linux", "serial": serial, "versions": versions, **extra})


def _state(*families: ImageFamily, as_of: datetime = AS_OF) -> BaselineState:
    fams = list(families)
    return BaselineState.from_contracts(fams, registry_table(fams, as_of))


def _in_force(*families: ImageFamily) -> InForce:
    return InForce(day="2026-11-19", state=_state(*families))


def test_the_same_contracts_again_may_replace_the_baseline():
    assert replacement_problems(_state(_family(), _family("rhel")), _in_force(_family(), _family("rhel"))) == []


def test_a_newer_serial_with_a_newer_version_is_accepted():
    newer = _family(serial=11, versions=[_version("1.0.0", 60), _version("1.1.0", 30, revoked=True), _version("1.2.0", 5), _version("1.3.0", 1)])
    assert replacement_problems(_state(newer), _in_force(_family())) == []


def test_the_first_baseline_needs_only_rows():
    assert replacement_problems(_state(_family()), None) == []
    future = _family(versions=[_version("9.0.0", -30)])
    assert replacement_problems(_state(future), None) == [
        "the new registry is empty: no golden-image version is visible (all released in the future?)"
    ]


def test_every_version_in_the_future_empties_the_registry_and_loses_the_family():
    future = _family(serial=11, versions=[_version("1.0.0", -1), _version("1.1.0", -2), _version("1.2.0", -3)])
    problems = replacement_problems(_state(future), _in_force(_family()))
    assert problems[0].startswith("the new registry is empty")
    assert problems[1] == "ubuntu: family ubuntu lost: no version visible (released in the future?); 1.2.0 is in force since 2026-11-19"


def test_an_older_serial_is_a_replay():
    problems = replacement_problems(_state(_family(serial=9)), _in_force(_family(serial=10)))
    assert problems == ["ubuntu: replayed contract refused: serial 9 is older than serial 10 in force since 2026-11-19"]


def test_one_serial_cannot_name_two_contracts():
    old, new = _state(_family()), _state(_family())
    current = InForce("2026-11-19", BaselineState({"ubuntu": FamilyState(**{**vars(old.families["ubuntu"]), "sha256": "a" * 64})}, old.rows))
    fresh = BaselineState({"ubuntu": FamilyState(**{**vars(new.families["ubuntu"]), "sha256": "b" * 64})}, new.rows)
    assert replacement_problems(fresh, current) == [
        "ubuntu: serial 10 is the one in force since 2026-11-19 but the content differs: a changed contract needs a higher serial"
    ]


def test_a_deleted_family_is_refused_and_a_retired_one_accepted():
    problems = replacement_problems(_state(_family()), _in_force(_family(), _family("rhel")))
    assert problems == [
        "family rhel deleted: its contract is gone (serial 10 in force since 2026-11-19); "
        "retire a family with a signed contract carrying `retired: true`"
    ]
    retired = _family("rhel", serial=11, versions=[], retired=True)
    assert replacement_problems(_state(_family(), retired), _in_force(_family(), _family("rhel"))) == []


def test_a_retired_family_is_remembered_so_its_old_contract_cannot_return():
    retired = _state(_family(), _family("rhel", serial=11, versions=[], retired=True))
    carried = _state(_family()).carrying_retired(retired)  # the retired contract was then removed
    assert carried.families["rhel"].retired and carried.families["rhel"].serial == 11
    back = replacement_problems(_state(_family(), _family("rhel", serial=10)), InForce("2026-11-20", carried))
    assert back == ["rhel: replayed contract refused: serial 10 is older than serial 11 in force since 2026-11-20"]


def test_a_version_moving_backwards_is_refused():
    older = _family(serial=11, versions=[_version("1.0.0", 60), _version("1.1.0", 30, revoked=True)])
    assert replacement_problems(_state(older), _in_force(_family())) == [
        "ubuntu: version moved backwards: newest 1.1.0 < 1.2.0 in force since 2026-11-19"
    ]


@pytest.mark.parametrize(
    "versions",
    [
        [_version("1.0.0", 60), _version("1.1.0", 30), _version("1.2.0", 5)],  # the revocation removed
        [_version("1.0.0", 60), _version("1.2.0", 5)],  # the revoked version removed
    ],
    ids=["revoked-field-removed", "version-removed"],
)
def test_a_dropped_revocation_is_refused(versions):
    assert replacement_problems(_state(_family(serial=11, versions=versions)), _in_force(_family())) == [
        "ubuntu: revocation of ubuntu 1.1.0 dropped (revoked in force since 2026-11-19); un-revoke only with a signed `unrevoke` entry"
    ]


def test_an_explicit_unrevoke_entry_lifts_a_revocation():
    lifted = _family(serial=11, versions=[_version("1.0.0", 60), _version("1.1.0", 30), _version("1.2.0", 5)],
                     unrevoke=[{"version": "1.1.0", "reason": "false positive: CVE does not apply"}])
    assert replacement_problems(_state(lifted), _in_force(_family())) == []


def test_every_problem_gets_its_own_line():
    bad = _family(serial=11, versions=[_version("1.0.0", 60)])
    problems = replacement_problems(_state(bad), _in_force(_family(), _family("rhel")))
    assert len(problems) == 3 and all("\n" not in p for p in problems)
    assert [p.split(":")[0] for p in problems] == ["family rhel deleted", "ubuntu", "ubuntu"]


def test_state_round_trips_through_the_partition_file(tmp_path):
    wh = Warehouse(str(tmp_path))
    fams = [_family(), _family("rhel", serial=11)]
    table = registry_table(fams, AS_OF)
    state = BaselineState.from_contracts(fams, table)
    wh.write("golden_images", table, date(2026, 11, 19), metadata=partition_metadata(state))
    found = in_force(wh, date(2026, 11, 20))
    assert found == InForce(day="2026-11-19", state=state)
    assert state.families["ubuntu"] == FamilyState(serial=10, newest="1.2.0", revoked=("1.1.0",))
    assert in_force(wh, date(2026, 11, 18)) is None


def test_a_partition_without_the_record_is_read_from_its_rows(tmp_path):
    wh = Warehouse(str(tmp_path))
    wh.write("golden_images", registry_table([_family()], AS_OF), date(2026, 11, 19))
    found = in_force(wh, "2026-11-19")
    assert found.state.families == {"ubuntu": FamilyState(newest="1.2.0", revoked=("1.1.0",))}
    dropped = _family(serial=1, versions=[_version("1.0.0", 60), _version("1.2.0", 5)])
    assert replacement_problems(_state(dropped), found) == [
        "ubuntu: revocation of ubuntu 1.1.0 dropped (revoked in force since 2026-11-19); un-revoke only with a signed `unrevoke` entry"
    ]
