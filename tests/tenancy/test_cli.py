"""`qlrf tenancy check|resolve`: the mapping against the newest inventory, a scope's organisation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from qlrf import cli
from qlrf.inventory.contract import inventory_table
from qlrf.warehouse import Warehouse

TODAY = date(2026, 11, 20)


def _vm(asset_id: str, platform: str, account: str, environment: str = "prod") -> dict:
    return {"asset_id": asset_id, "platform": platform, "account": account, "region": "r", "name": asset_id,
            "state": "running", "environment": environment, "discovered_at": datetime(2026, 11, 20, tzinfo=UTC)}


def _warehouse(home, vms_by_platform: dict[str, list[dict]]) -> None:
    wh = Warehouse(str(home / "warehouse"))
    for platform, vms in vms_by_platform.items():
        wh.write("inventory", inventory_table(vms), "2026-11-20", platform)


def test_check_passes_when_every_vm_has_an_org(isolated_env, capsys):
    _warehouse(isolated_env, {"aws": [_vm("i-1", "aws", "111111111111"), _vm("i-2", "aws", "333333333333", "dev")],
                              "vsphere": [_vm("v-1", "vsphere", "VC01.acme.local")]})
    assert cli.main(["tenancy", "check"], today=TODAY) == 0
    out = capsys.readouterr().out
    assert "inventory 2026-11-20: 3 VM(s); acme 2, initech 1" in out and "every VM has an organisation" in out
    assert "warning: project 'initech/labs' has no VM" in out
    assert "which the project does not list" not in out  # every VM is in an environment its project lists


def test_check_warns_about_a_vm_outside_its_projects_environments(isolated_env, capsys):
    _warehouse(isolated_env, {"aws": [_vm("i-1", "aws", "111111111111", "dev"), _vm("i-2", "aws", "111111111111")]})
    assert cli.main(["tenancy", "check"], today=TODAY) == 0  # a warning: the VM still has an organisation
    assert ("warning: 1 VM(s) of project 'acme/production' are in environment 'dev', which the project does not list"
            in capsys.readouterr().out)


def test_check_lists_unmapped_scopes_and_fails(isolated_env, capsys):
    _warehouse(isolated_env, {"aws": [_vm("i-1", "aws", "111111111111"), _vm("i-2", "aws", "444444444444"),
                                      _vm("i-3", "aws", "444444444444")]})
    assert cli.main(["tenancy", "check", "--json"], today=TODAY) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["unmapped"] == [{"platform": "aws", "scope": "444444444444", "vms": 2}]
    assert report["empty_orgs"] == ["initech"] and report["ok"] is False


def test_check_refuses_a_bad_file_naming_it(isolated_env, tmp_path, capsys):
    bad = tmp_path / "t.yaml"
    bad.write_text("version: 1\norganisations: {a: {projects: {p: {scopes: {aws: ['1', '1']}}}}}\n")
    assert cli.main(["tenancy", "check", "--file", str(bad)], today=TODAY) == 2
    err = capsys.readouterr().err
    assert f"{bad}: organisations.a.projects.p.scopes.aws: scope '1' is mapped twice" in err


def test_check_with_no_inventory_says_so(isolated_env, capsys):
    assert cli.main(["tenancy", "check"], today=TODAY) == 0
    assert "no inventory partition yet" in capsys.readouterr().out


def test_resolve(isolated_env, capsys):
    assert cli.main(["tenancy", "resolve", "vsphere", "VC02.acme.local"], today=TODAY) == 0
    assert capsys.readouterr().out.strip() == "initech/labs"
    assert cli.main(["tenancy", "resolve", "gcp", "someone-else"], today=TODAY) == 1
    assert "unassigned: gcp scope 'someone-else' is not mapped" in capsys.readouterr().out
