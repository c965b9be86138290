"""Risk per VM: the additive sum of its factors, with the top factors named; weights and CVE files
validated with file:line errors."""

from __future__ import annotations

import pytest

from qlrf.predict import risk
from qlrf.predict.policyfile import PolicyFileError
from qlrf.predict.stages import run_risk
from qlrf.scoring.compliance import load_catalogue
from qlrf.warehouse import Warehouse
from tests.predict.support import DAY, predict_day


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    wh = Warehouse(str(tmp_path_factory.mktemp("wh")))
    predict_day(wh)
    weights = risk.load_weights()
    out = run_risk(wh, DAY, "aws", weights, risk.load_cves(), risk.control_severities(load_catalogue()))
    return wh, weights, out, {r["asset_id"]: r for r in wh.read("vm_risk", DAY, "aws").to_pylist()}


def test_score_is_the_sum_of_its_factors_and_names_the_top_three(scored):
    _wh, weights, out, vms = scored
    assert out.rows == out.distinct_keys == 4
    for vm in vms.values():
        points = {f: vm[f"{f}_points"] for f in risk.FACTORS}
        assert vm["risk_score"] == pytest.approx(min(100, sum(points.values())), abs=0.01)
        ranked = [f for f, p in sorted(points.items(), key=lambda kv: (-kv[1], kv[0])) if p > 0]
        named = [vm[f"top_factor_{i}"] for i in (1, 2, 3) if vm[f"top_factor_{i}"]]
        assert set(named) <= set(ranked) and len(named) == min(3, len(ranked))
        assert min(points[f] for f in named) >= sorted(points.values(), reverse=True)[len(named) - 1]
        assert vm["risk_level"] == weights.level(vm["risk_score"])


def test_revoked_public_vulnerable_vm_carries_each_factor(scored):
    _wh, weights, _out, vms = scored
    revoked, current = vms["i-0002"], vms["i-0001"]
    f = weights.factors
    assert revoked["revoked_image_points"] == f.revoked_image and current["revoked_image_points"] == 0
    assert revoked["drift_severity_points"] == f.drift_severity.critical
    assert revoked["public_ip_points"] == f.public_ip
    assert revoked["vulnerable_cves"] == 1 and revoked["cve_ids"] == "CVE-2026-31337"
    assert revoked["vulnerable_packages_points"] == f.vulnerable_packages.critical
    assert current["vulnerable_cves"] == 0  # openssl 3.0.9 is past the affected range
    assert revoked["group_size"] == 2 and revoked["group_size_points"] == pytest.approx(f.group_size.per_doubling)
    assert revoked["environment_points"] == f.environment["prod"]
    assert revoked["top_factor_1"] == "drift_severity"
    assert revoked["risk_score"] > current["risk_score"]


def test_scores_and_site_roll_up(scored):
    _wh, _weights, out, vms = scored
    lon1 = next(r for r in out.table.to_pylist() if r["site"] == "lon1" and r["environment"] == "prod")
    assert lon1["vms"] == 2 and lon1["max_risk_score"] == max(vms["i-0001"]["risk_score"], vms["i-0002"]["risk_score"])
    # mean points per VM: drift (0 + 20) / 2 ties environment 10 (ties go to the later factor)
    assert lon1["top_factors"].split(", ")[:2] == ["environment +10.00", "drift_severity +10.00"]
    sites = risk.risk_sites(out.table).to_pylist()
    assert [s["risk_score"] for s in sites] == sorted((s["risk_score"] for s in sites), reverse=True)
    assert sum(s["vms"] for s in sites) == 4


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if line.strip().startswith(needle))


@pytest.mark.parametrize(("old", "new", "message"), [
    ("revoked_image: 12", "revoked_image: [12]", "factors.revoked_image: Input should be a valid number"),
    ("levels: {medium: 25, high: 45, critical: 65}", "levels: {medium: 50, high: 45, critical: 65}", "levels: must rise"),
    ("public_ip: 8", "public_ip: -8", "factors.public_ip: Input should be greater than or equal to 0"),
    ("dr_gap: 8", "dr_gap: 8\n  surprise: 1", "factors.surprise: Extra inputs are not permitted"),
    ("public_ip: 8", "public_ip: 8: 9", "not valid YAML"),
])
def test_malformed_weights_name_the_file_and_line(tmp_path, old, new, message):
    text = risk.WEIGHTS_PATH.read_text().replace(old, new)
    path = tmp_path / "risk_weights.yaml"
    path.write_text(text)
    with pytest.raises(PolicyFileError) as err:
        risk.load_weights(path)
    line = _line(text, new.split("\n")[-1].strip())
    assert f"{path}:{line}: " in str(err.value) and message in str(err.value), str(err.value)


def test_bad_cve_range_and_duplicates_name_the_line(tmp_path):
    path = tmp_path / "cves.yaml"
    path.write_text("version: 1\ncves:\n  - {id: A, package: openssl, affected: '~3.0', severity: high}\n")
    with pytest.raises(PolicyFileError, match=rf"{path}:3: cves.0.affected: .*cannot read version clause"):
        risk.load_cves(path)
    path.write_text("version: 1\ncves:\n  - {id: A, package: p, affected: '<1', severity: low}\n"
                    "  - {id: A, package: q, affected: '<2', severity: low}\n")
    with pytest.raises(PolicyFileError, match=rf"{path}:4: cves.1.id: duplicate"):
        risk.load_cves(path)
    path.write_text("version: 1\ncves:\n  - {id: A, package: p, affected: '<1', severity: urgent}\n")
    with pytest.raises(PolicyFileError, match=rf"{path}:3: cves.0.severity"):
        risk.load_cves(path)


def test_plan_risk_is_raised_by_the_score_never_lowered():
    from qlrf.remediation.planner import risk_level

    assert risk_level("dev", 3, False) == "low"
    assert risk_level("dev", 3, False, risk_score=10) == "low"
    assert risk_level("dev", 3, False, risk_score=50) == "high"
    assert risk_level("dev", 3, False, risk_score=90) == "critical"
    assert risk_level("prod", 3, True, risk_score=0) == "high"
