"""Drift, compliance and DR readiness over small hand-built estates with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from qlrf import sql
from qlrf.baselines.contracts import ImageFamily, registry_table
from qlrf.baselines.versions import sort_versions, version_key
from qlrf.inventory.contract import inventory_table, snapshot_table
from qlrf.scoring import compliance, dr, drift

AS_OF = datetime(2026, 11, 27, 12, tzinfo=UTC)


def ami(version: str) -> str:
    return "ami-" + version.replace(".", "").rjust(8, "0")


def _family() -> ImageFamily:
    def v(ver, days, channel, revoked=False):
        doc = {"version": ver, "released_at": AS_OF - timedelta(days=days), "channel": channel,
               "images": {"aws": {"eu-west-1": ami(ver)}, "vsphere": {"*": f"tmpl-{ver}"}}}
        if revoked:
            doc["revoked"] = {"reason": "CVE", "date": (AS_OF - timedelta(days=1)).date()}
        return doc
    return ImageFamily.model_validate({"family": "ubuntu", "os": "Ubuntu", "versions": [
        v("1.0.0", 200, "prod"), v("1.1.0", 120, "prod", revoked=True), v("1.2.0", 60, "prod"),
        v("1.3.0", 30, "prod"), v("1.10.0", 10, "prod"), v("2.0.0", 5, "staging"), v("2.1.0", 1, "dev")]})


def _vm(asset_id, image, env="prod", **over):
    row = {"asset_id": asset_id, "platform": "aws", "account": "1", "region": "eu-west-1", "zone": "eu-west-1a",
           "name": asset_id, "state": "running", "image_ref": image, "instance_type": "t3", "launched_at": AS_OF,
           "tags": {}, "group": None, "site": "s1", "environment": env, "owner": "team", "public_ip": False,
           "discovered_at": AS_OF}
    row.update(over)
    return row


@pytest.fixture()
def registry():
    return registry_table([_family()], AS_OF)


def test_version_order_is_numeric():
    assert sort_versions(["1.10.0", "1.9.3", "1.2.0", "2.0.0-rc1", "2.0.0"]) == ["1.2.0", "1.9.3", "1.10.0", "2.0.0-rc1", "2.0.0"]
    assert version_key("v1.2") < version_key("1.10")
    assert version_key("3.0") == version_key("3.0.0") < version_key("3.0.7")


def test_drift_status_per_vm(registry):
    inv = inventory_table([
        _vm("cur", ami("1.10.0")),
        _vm("behind2", ami("1.2.0")),  # 1.3.0 and 1.10.0 are newer; the revoked 1.1.0 does not count
        _vm("oldest", ami("1.0.0")),
        _vm("revoked", ami("1.1.0")),
        _vm("unknown", "ami-0badc0de"),
        _vm("unmanaged", None),
        _vm("stg-cur", ami("2.0.0"), env="staging"),
        _vm("dev-behind", ami("2.0.0"), env="dev"),
    ])
    out = {r["asset_id"]: r for r in drift.vm_drift(inv, registry, AS_OF).to_pylist()}
    assert (out["cur"]["status"], out["cur"]["versions_behind"], out["cur"]["severity"]) == ("current", 0, "none")
    assert (out["behind2"]["status"], out["behind2"]["versions_behind"], out["behind2"]["days_behind"]) == ("behind", 2, 50)
    assert out["behind2"]["severity"] == "medium"
    assert (out["oldest"]["versions_behind"], out["oldest"]["severity"]) == (3, "high")
    assert (out["revoked"]["status"], out["revoked"]["severity"], out["revoked"]["revoked_reason"]) == ("revoked", "critical", "CVE")
    assert out["unknown"]["status"] == "unknown" and out["unmanaged"]["status"] == "unmanaged"
    assert out["stg-cur"]["status"] == "current" and out["stg-cur"]["current_version"] == "2.0.0"
    assert (out["dev-behind"]["status"], out["dev-behind"]["versions_behind"], out["dev-behind"]["current_version"]) == ("behind", 1, "2.1.0")
    assert out["behind2"]["image_age_days"] == 60


def test_versions_released_after_as_of_are_invisible():
    early = registry_table([_family()], AS_OF - timedelta(days=20))
    assert "1.10.0" not in early["version"].to_pylist()
    assert "1.3.0" in early["version"].to_pylist()


def test_drift_scores(registry):
    inv = inventory_table([_vm("a", ami("1.10.0")), _vm("b", ami("1.1.0")), _vm("c", ami("1.10.0"), env="dev")])
    scores = drift.drift_scores(drift.vm_drift(inv, registry, AS_OF)).to_pylist()
    prod = next(s for s in scores if s["environment"] == "prod")
    assert (prod["vms"], prod["on_current"], prod["pct_current"], prod["revoked"], prod["drift_score"]) == (2, 1, 50.0, 1, 50.0)
    dev = next(s for s in scores if s["environment"] == "dev")
    assert dev["drift_score"] == 50.0  # 2.0.0 and 2.1.0 are newer on the dev channel: two behind, medium


def _facts(registry, vms, snaps):
    con = sql.connect()
    inv = inventory_table(vms)
    compliance.prepare_facts(con, inv, drift.vm_drift(inv, registry, AS_OF, sql.connect()), snapshot_table(snaps), AS_OF)
    return con


def _snap(asset_id, hours):
    return {"asset_id": asset_id, "platform": "aws", "snapshot_id": f"s-{asset_id}-{hours}", "source_id": None,
            "region": None, "created_at": AS_OF - timedelta(hours=hours)}


def test_compliance_controls(registry):
    vms = [
        _vm("good", ami("1.10.0")),
        _vm("bad", ami("1.1.0"), public_ip=True, owner=None),
        _vm("devbox", ami("2.1.0"), env="dev"),
    ]
    con = _facts(registry, vms, [_snap("good", 2), _snap("bad", 30)])
    rows = {r["asset_id"]: r for r in compliance.vm_compliance(con, compliance.load_catalogue(), [], AS_OF.date()).to_pylist()}
    assert rows["good"]["failed_controls"] == [] and rows["good"]["weight_passed"] == rows["good"]["weight_applicable"]
    # A revoked image also stops being an approved prod golden image (RF-IMG-001).
    assert rows["bad"]["failed_controls"] == ["RF-IMG-001", "RF-IMG-002", "RF-IMG-003", "RF-TAG-001", "RF-DR-001", "RF-NET-001"]
    assert rows["bad"]["controls_applicable"] == 7
    assert rows["devbox"]["controls_applicable"] == 4  # the three prod-only controls do not apply
    site = compliance.compliance_scores(compliance.vm_compliance(con, compliance.load_catalogue(), [], AS_OF.date())).to_pylist()
    prod = next(r for r in site if r["environment"] == "prod")
    # weights: good passes 3+5+2+3+2+3+3 = 21; bad passes only RF-IMG-004 (3) of 21.
    assert (prod["vms"], prod["non_compliant_vms"], prod["failures"], prod["compliance_score"]) == (2, 1, 6, round(100 * 24 / 42, 2))


def _waiver(control, expires, **match):
    return compliance.Waiver.model_validate(
        {"id": f"W-{control}", "control": control, "owner": "sre", "reason": "accepted risk", "expires": expires, "match": match}
    )


def test_waivers_apply_until_they_expire(registry):
    vms = [_vm("exposed", ami("1.10.0"), public_ip=True, site="lon1"), _vm("other", ami("1.10.0"), public_ip=True, site="fra1")]
    con = _facts(registry, vms, [_snap("exposed", 1), _snap("other", 1)])
    cat = compliance.load_catalogue()
    waiver = _waiver("RF-NET-001", AS_OF.date(), site="lon1")
    rows = {r["asset_id"]: r for r in compliance.vm_compliance(con, cat, [waiver], AS_OF.date()).to_pylist()}
    assert rows["exposed"]["failed_controls"] == [] and rows["exposed"]["waived_controls"] == ["RF-NET-001"]
    assert rows["exposed"]["weight_passed"] == rows["exposed"]["weight_applicable"]
    assert rows["other"]["failed_controls"] == ["RF-NET-001"]  # the waiver matches lon1 only
    next_day = AS_OF.date() + timedelta(days=1)
    rows = {r["asset_id"]: r for r in compliance.vm_compliance(con, cat, [waiver], next_day).to_pylist()}
    assert rows["exposed"]["failed_controls"] == ["RF-NET-001"] and rows["exposed"]["waived_controls"] == []


def test_waiver_file_is_validated(tmp_path):
    empty_match = tmp_path / "w.yaml"
    empty_match.write_text("version: 1\nwaivers:\n  - {id: W1, control: RF-NET-001, owner: a, reason: b, expires: 2027-01-01, match: {}}\n")
    with pytest.raises(ValueError, match="must match something"):
        compliance.load_waivers(empty_match)
    unknown = tmp_path / "u.yaml"
    unknown.write_text("version: 1\nwaivers:\n  - {id: W2, control: RF-NOPE, owner: a, reason: b, expires: 2027-01-01, match: {site: x}}\n")
    with pytest.raises(ValueError, match="unknown control 'RF-NOPE'"):
        compliance.load_waivers(unknown, compliance.load_catalogue())
    shipped = compliance.load_waivers(catalogue=compliance.load_catalogue())
    assert {w.id for w in shipped} == {"W-2026-014", "W-2026-009"}


def test_a_control_that_does_not_evaluate_names_itself(registry, tmp_path):
    cat = compliance.Catalogue.model_validate({"version": 1, "controls": [{
        "id": "X-1", "title": "t", "severity": "low", "rationale": "r", "applies_to": ["all"],
        "applies_when": "true", "pass_when": "no_such_column = 1"}]})
    con = _facts(registry, [_vm("a", ami("1.10.0"))], [])
    with pytest.raises(ValueError, match="no_such_column"):
        compliance.vm_compliance(con, cat, [], AS_OF.date())


def test_catalogue_rejects_unknown_fields(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("version: 1\ncontrols:\n  - id: A\n    title: t\n    severity: urgent\n")
    with pytest.raises(ValueError, match="severity"):
        compliance.load_catalogue(bad)


def test_dr_readiness(registry):
    vms = [_vm("ok", ami("1.10.0")), _vm("stale", ami("1.10.0")), _vm("none", ami("1.10.0")),
           _vm("rogue", "ami-0badc0de"), _vm("dev", ami("2.1.0"), env="dev")]
    con = _facts(registry, vms, [_snap("ok", 3), _snap("stale", 48), _snap("rogue", 1), _snap("dev", 100)])
    rows = {r["asset_id"]: r for r in dr.vm_dr(con).to_pylist()}
    assert rows["ok"]["ready"] and rows["dev"]["ready"]  # dev RPO is a week
    assert rows["stale"]["gap"] == "restore point older than RPO" and not rows["stale"]["rpo_met"]
    assert rows["none"]["gap"] == "no restore point"
    assert rows["rogue"]["gap"] == "cannot rebuild from a golden image" and rows["rogue"]["rpo_met"]
    scores = dr.dr_scores(dr.vm_dr(con)).to_pylist()
    prod = next(s for s in scores if s["environment"] == "prod")
    assert (prod["vms"], prod["ready_vms"], prod["dr_readiness"]) == (4, 1, 25.0)


def test_current_golden_image_per_channel(registry):
    from qlrf.baselines.contracts import current_images

    rows = {(r["channel"], r["platform"]): r for r in current_images(registry).to_pylist()}
    assert rows[("prod", "aws")]["version"] == "1.10.0" and rows[("prod", "aws")]["image_ref"] == ami("1.10.0")
    assert rows[("staging", "aws")]["version"] == "2.0.0"
    assert (rows[("dev", "vsphere")]["version"], rows[("dev", "vsphere")]["promoted_to"]) == ("2.1.0", "dev")
