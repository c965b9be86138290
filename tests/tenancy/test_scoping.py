"""Warehouse scoping (issue 14 item 5): no cross-tenant row leaves any reader.

One small AWS day scored by the real stages (drift, compliance, DR, risk, cost), with VMs of two
organisations from the repository's tenancy file: acme (account 111111111111, site lon1) and initech
(account 333333333333, site syd1, a site acme has no VM in). Every reader runs three ways: unrestricted
(must show initech: the data is there), restricted to acme (must show acme and nothing of initech),
restricted to no organisation (nothing of either, or a refusal).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from qlrf.ai.tools import READ_ONLY_TOOLS, ToolBox, ToolContext
from qlrf.baselines import sbom
from qlrf.inventory.instance_types import default_instance_types
from qlrf.predict import cost, risk
from qlrf.predict import stages as predict_stages
from qlrf.remediation.audit import AuditLog
from qlrf.scoring import report
from qlrf.scoring.compliance import load_catalogue
from qlrf.scoring.page_tables import run_page_tables
from qlrf.views import compliance, dr, drift, images, overview, sites
from qlrf.views.base import DataProblem, Scope
from qlrf.warehouse import Warehouse
from tests.ai.support import openssl_packages, scored_aws_day

DAY = date(2026, 11, 20)
AS_OF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 11, 1, tzinfo=UTC)
ACME, INITECH = "111111111111", "333333333333"


def _image(version, rank, released, ref, revoked=None):
    return {"family": "ubuntu-22", "os": "linux", "version": version, "version_rank": rank, "released_at": released,
            "channel": "prod", "channel_level": 2, "parent": None, "revoked": revoked is not None,
            "revoked_reason": revoked, "sbom": None, "platform": "aws", "region": "*", "image_ref": ref}


REGISTRY = [_image("1.0", 1, T0 - timedelta(days=60), "ami-00000001", revoked="CVE-2026-0001"),
            _image("1.1", 2, T0 - timedelta(days=30), "ami-00000002"),
            _image("1.2", 3, T0, "ami-00000003")]


def _vm(asset_id, account, site, image):
    region = "eu-west-2" if site == "lon1" else "ap-southeast-2"
    return {"asset_id": asset_id, "platform": "aws", "account": account, "region": region, "name": asset_id,
            "state": "running", "image_ref": image, "site": site, "environment": "prod", "owner": "team",
            "instance_type": "m6i.large", "discovered_at": AS_OF, "tags": {}}


VMS = [_vm("i-acme-1", ACME, "lon1", "ami-00000003"), _vm("i-acme-2", ACME, "lon1", "ami-00000001"),
       _vm("i-initech-1", INITECH, "syd1", "ami-00000001"), _vm("i-initech-2", INITECH, "syd1", "ami-00000002"),
       _vm("i-initech-3", INITECH, "syd1", "ami-00000001")]
FOREIGN = ("i-initech", "syd1", "initech", INITECH, "ap-southeast-2")  # nothing of these may reach an acme reader
OWN = ("i-acme", "lon1", "eu-west-2")


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> Warehouse:
    wh = Warehouse(str(tmp_path_factory.mktemp("wh")))
    # the inventory is written as the normaliser leaves it (no org): the stages fill it from the mapping
    scored_aws_day(wh, DAY, AS_OF, REGISTRY, VMS)
    run_page_tables(wh, DAY, "aws")  # what the dashboard's distributions are summed from
    openssl_packages(wh, DAY)
    predict_stages.run_risk(wh, DAY, "aws", risk.load_weights(), risk.load_cves(), risk.control_severities(load_catalogue()))
    predict_stages.run_cost(wh, DAY, "aws", cost.load_price_table(), default_instance_types())
    summary, fleet_sites = report.fleet_tables(wh, DAY, ("aws",))
    wh.write("fleet_report", summary, DAY)
    wh.write("fleet_sites", fleet_sites, DAY)
    return wh


def _tool(name: str, args: dict) -> Callable:
    def run(wh: Warehouse, orgs):
        audit = AuditLog("sqlite://")
        box = ToolBox(READ_ONLY_TOOLS, ToolContext(wh, audit, None, orgs=orgs), audit, conversation="scoping")
        result = box.call(name, args)
        if result["status"] != "ok":
            raise DataProblem(result["error"])
        return result
    return run


def _cost_by_site(wh: Warehouse, orgs) -> list[str]:
    """estimate_cost rolls up by platform and type, so ask per site: '<site>:<VMs>' for each site with costed VMs."""
    out = []
    for site in ("lon1", "syd1"):
        vms = sum(r["vms"] for r in _tool("estimate_cost", {"site": site})(wh, orgs)["rows"])
        if vms:
            out.append(f"{site}:{vms}")
    return out


S = "2026-11-20"
def _frame_rows(value) -> int:
    frame = value[0] if isinstance(value, tuple) else value
    return len(frame) if not isinstance(frame, list) else len(frame)


def _per_site(view: Callable) -> Callable:
    """A view that rolls up past sites and VMs, asked once per site: '<site>:<rows>' for each site it
    returned rows for, so an initech row shows up as 'syd1' however the view aggregates."""
    def run(wh: Warehouse, orgs):
        return [f"{site}:{n}" for site in ("lon1", "syd1")
                if (n := _frame_rows(view(wh, Scope(S, site=site, orgs=orgs))))]
    return run


READERS: dict[str, Callable] = {
    "views.drift.versions_behind": _per_site(drift.versions_behind),
    "views.drift.revoked_exposure": _per_site(drift.revoked_exposure),
    "views.drift.drilldown": lambda wh, o: drift.drilldown(wh, Scope(S, orgs=o), "syd1", "prod")[0].to_string()
    + drift.drilldown(wh, Scope(S, orgs=o), "lon1", "prod")[0].to_string(),
    "views.drift.heatmap": lambda wh, o: drift.heatmap(wh, Scope(S, orgs=o)),
    "views.drift.trend": lambda wh, o: drift.trend(wh, Scope(S, orgs=o)),
    "views.compliance.control_rates": _per_site(lambda wh, sc: compliance.control_rates(wh, sc, load_catalogue())
                                                .query("vms > 0")),
    "views.compliance.failing_vms": lambda wh, o: [
        compliance.failing_vms(wh, Scope(S, orgs=o), c.id)[0].to_string() for c in load_catalogue().controls],
    "views.dr.not_ready": lambda wh, o: dr.not_ready(wh, Scope(S, orgs=o))[0],
    "views.dr.readiness_by_site": lambda wh, o: dr.readiness_by_site(wh, Scope(S, orgs=o)),
    "views.dr.gaps": _per_site(dr.gaps),
    "views.dr.regions": lambda wh, o: dr.regions(wh, Scope(S, orgs=o)),
    "views.dr.readiness_history": lambda wh, o: dr.readiness_history(wh, Scope(S, orgs=o)),
    "views.sites.history": _per_site(sites.history),
    "views.images.usage": _per_site(images.usage),
    "views.images.vms_on": lambda wh, o: images.vms_on(wh, Scope(S, orgs=o), "ubuntu-22", "1.0")[0],
    "views.sites.site_names": lambda wh, o: sites.site_names(wh, S, o),
    "views.sites.scores": _per_site(sites.scores),
    "report.report_text": lambda wh, o: report.report_text(wh, DAY, o),
    "sbom.vms_running": lambda wh, o: sbom.vms_running(wh, DAY, sbom.PackageQuery.parse("openssl"), orgs=o).to_pylist(),
    "ai.query_assets": _tool("query_assets", {}),
    "ai.get_drift_status": _tool("get_drift_status", {}),
    "ai.get_drift_status.vm": _tool("get_drift_status", {"asset_id": "i-initech-1"}),
    "ai.check_compliance": _tool("check_compliance", {}),
    "ai.get_dr_status": _tool("get_dr_status", {}),
    "ai.get_risk": _tool("get_risk", {}),
    "ai.get_risk.vms": _tool("get_risk", {"site": "syd1"}),
    "ai.sbom_query": _tool("sbom_query", {"package": "openssl"}),
    "ai.estimate_cost": _cost_by_site,
}


ASKS_FOR_FOREIGN_ROWS = ("ai.get_drift_status.vm", "ai.get_risk.vms")  # queries naming an initech VM or site


def _text(value) -> str:
    return json.dumps(value, default=lambda v: v.to_string() if hasattr(v, "to_string") else str(v))


@pytest.mark.parametrize("name", sorted(READERS))
def test_no_cross_tenant_rows_leave_the_reader(wh, name):
    reader = READERS[name]
    everything = _text(reader(wh, None))
    assert any(marker in everything for marker in FOREIGN), f"{name}: initech data missing unrestricted"
    try:
        acme = _text(reader(wh, ("acme",)))
    except DataProblem as refused:  # asking for another tenant's VM by id: refused, and the message names nothing of it
        assert name in ASKS_FOR_FOREIGN_ROWS, f"{name} refused its own organisation's reader: {refused}"
        acme = str(refused).replace("i-initech-1: no vm_drift row", "")  # the id the caller typed is echoed back
    leaked = [marker for marker in FOREIGN if marker in acme]
    assert not leaked, f"{name} leaked {leaked} to an acme reader: {acme[:500]}"
    if name not in ASKS_FOR_FOREIGN_ROWS:
        assert any(marker in acme for marker in OWN), f"{name}: acme reader saw nothing of its own"
    try:
        nobody = _text(reader(wh, ()))
    except DataProblem:
        return  # a refusal is fine; showing anything is not
    assert not [m for m in (*FOREIGN, *OWN) if m in nobody], f"{name} showed rows to a reader with no organisation"


def test_restricted_rollups_match_the_stage_for_that_organisations_vms(wh):
    """A roll-up recomputed for acme equals what the stage writes for acme's VMs alone (2 VMs, 1 revoked)."""
    cells = drift.heatmap(wh, Scope(S, orgs=("acme",)))
    assert cells[["site", "vms"]].to_dict("records") == [{"site": "lon1", "vms": 2}]
    everyone = drift.heatmap(wh, Scope(S))
    assert sorted(everyone["site"]) == ["lon1", "syd1"]
    rows = overview.fleet_row(wh, Scope(S, orgs=("initech",)))
    assert rows.set_index("platform").loc["all", "vms"] == 3
    assert overview.fleet_row(wh, Scope(S)).set_index("platform").loc["all", "vms"] == 5
    vms, _, headlines, _ = overview.headlines(wh, Scope(S, orgs=("acme",)))
    by_key = {h.key: h.value for h in headlines}
    assert vms == 2 and by_key["pct_current_golden"] == 50.0  # i-acme-1 current, i-acme-2 revoked
    with pytest.raises(DataProblem, match="No VMs of nobody"):
        overview.fleet_row(wh, Scope(S, orgs=("nobody",)))


def test_fleet_wide_tables_are_refused_to_a_restricted_reader(wh):
    with pytest.raises(DataProblem, match="fleet_sites has no organisation to filter on"):
        from qlrf.views.base import scan

        scan(wh, "fleet_sites", Scope(S, orgs=("acme",)), "SELECT * FROM t", daily=True)
    with pytest.raises(DataProblem, match="failover simulation"):
        dr.simulation(wh, S, "site", "lon1", orgs=("acme",))


def test_report_has_a_by_organisation_section(wh):
    text = report.report_text(wh, DAY)
    section = text.split("By organisation:")[1].split("\n\n")[0]
    lines = [line.split() for line in section.splitlines()[3:]]
    assert [(r[0], r[1], r[2]) for r in lines] == [("acme", "production", "2"), ("initech", "development", "3")]


def test_an_ai_scope_with_an_org_resolves_only_that_organisations_vms(wh):
    """The orchestrator sets a proposal's scope.org to the asker's organisation: its targets never include
    another organisation's VM, even one named by id; a view restricted to acme does not know syd1."""
    from qlrf.ai.scope import DayView, resolve
    from qlrf.ai.taskspec import Scope as TaskScope

    with DayView(wh, S) as view:
        everyone = resolve(view, TaskScope(environment="prod"), "remediate_drift")
        acme = resolve(view, TaskScope(environment="prod", org="acme"), "remediate_drift")
        foreign = resolve(view, TaskScope(org="acme", asset_ids=["i-initech-1"]), "remediate_drift")
    assert (everyone.vms, acme.vms) == (5, 2) and acme.drifted == 1  # i-acme-2 runs the revoked 1.0
    assert any("i-initech-1" in p for p in foreign.problems) and foreign.vms == 0
    with DayView(wh, S, orgs=("acme",)) as view:
        assert view.sites() == ["lon1"]


def test_cli_report_and_sbom_query_read_as_the_caller(wh, tmp_path, monkeypatch, capsys):
    """`qlrf report` and `qlrf sbom query` pass the CLI caller's organisations to their readers: a trusted
    local operator with viewer@acme sees acme's VMs only; the single-user default (no identity) sees all."""
    from qlrf.cli import main
    from qlrf.tenancy import Grant
    from qlrf.tenancy.store import GrantStore

    monkeypatch.setenv("QLRF_WAREHOUSE", wh.root)
    monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
    for var in ("QLRF_POSTGRES_URL", "QLRF_CLI_TRUSTED_LOCAL_USER", "QLRF_ID_TOKEN", "QLRF_TENANCY_FILE"):
        monkeypatch.delenv(var, raising=False)
    assert main(["report", "--date", DAY.isoformat()], today=DAY) == 0  # the clock is an input
    everything = capsys.readouterr().out
    assert "initech" in everything and "syd1" in everything

    store = GrantStore(audit=AuditLog())
    store.bootstrap_admin("root", operator="root")
    store.grant("alice", Grant("viewer", "acme"), by=store.principal("root", "trusted_local"))
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "alice")
    assert main(["report", "--date", DAY.isoformat()], today=DAY) == 0
    mine = capsys.readouterr().out
    assert "acme" in mine and not any(word in mine for word in ("initech", "syd1"))
    assert main(["sbom", "query", "openssl", "--date", DAY.isoformat(), "--json"], today=DAY) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits and {h["asset_id"][:6] for h in hits} == {"i-acme"}
