"""The tenancy file: validation with clear errors, resolution, stamping, and readers filling 1.0 partitions."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from qlrf import sql
from qlrf.inventory import sample
from qlrf.inventory.contract import CONTRACT_VERSION, INVENTORY_SCHEMA, inventory_table
from qlrf.tenancy import model

GOOD = """
version: 1
organisations:
  acme:
    projects:
      web:
        environments: [prod]
        scopes: {aws: ["111"], vsphere: [VC01.example]}
  initech:
    projects:
      lab:
        scopes: {gcp: [initech-dev]}
"""


def _write(tmp_path, text: str):
    path = tmp_path / "tenancy.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_repo_file_maps_every_sample_scope_to_one_of_two_real_orgs():
    tenancy = model.load()
    assert tenancy.orgs == ("acme", "initech")
    for platform, by_env in sample.ACCOUNTS.items():
        for env, scope in by_env.items():
            org, project = tenancy.resolve(platform, scope)
            assert org in tenancy.orgs, (platform, env, scope)
    assert tenancy.resolve("aws", sample.ACCOUNTS["aws"]["prod"]) == ("acme", "production")
    assert tenancy.resolve("vsphere", "vc02.acme.local")[0] == "initech"


def test_resolve_is_case_insensitive_and_unmapped_is_unassigned_never_a_real_org(tmp_path):
    tenancy = model.load(_write(tmp_path, GOOD))
    assert tenancy.resolve("vsphere", "vc01.EXAMPLE") == ("acme", "web")
    assert tenancy.resolve("aws", " 111 ") == ("acme", "web")
    assert tenancy.resolve("aws", "222") == (model.UNASSIGNED, model.UNASSIGNED)
    assert tenancy.resolve("gcp", "111") == (model.UNASSIGNED, model.UNASSIGNED)  # scopes are per platform
    assert tenancy.resolve("aws", None) == (model.UNASSIGNED, model.UNASSIGNED)


def test_path_comes_from_the_environment(tmp_path):
    path = _write(tmp_path, GOOD)
    assert model.load(env={model.ENV_VAR: str(path)}).source == str(path)
    assert model.path_from(None, {}) == model.DEFAULT_FILE


@pytest.mark.parametrize(("text", "where", "problem"), [
    ("version: 1\norganisations: {}\n", "organisations", "at least one organisation"),
    ("version: 2\norganisations: {a: {projects: {p: {scopes: {aws: ['1']}}}}}\n", "version", "unsupported version"),
    ("version: 1\norganisations: {a: {projects: {p: {scopes: {aws: ['1']}}}}}\ncolour: red\n", "tenancy.yaml", "unknown key(s) 'colour'"),
    ("version: 1\norganisations: {a: {owner: x, projects: {p: {scopes: {aws: ['1']}}}}}\n", "organisations.a", "unknown key(s) 'owner'"),
    ("version: 1\norganisations: {a: {projects: {p: {scope: {aws: ['1']}}}}}\n", "organisations.a.projects.p", "unknown key(s) 'scope'"),
    ("version: 1\norganisations: {a: {projects: {p: {scopes: {aws: ['1']}}}}, b: {projects: {q: {scopes: {aws: ['1']}}}}}\n",
     "organisations.b.projects.q.scopes.aws", "scope '1' is mapped twice (also at "),
    ("version: 1\norganisations: {a: {projects: {p: {scopes: {aws: ['X1']}}, q: {scopes: {aws: ['x1']}}}}}\n",
     "organisations.a.projects.q.scopes.aws", "mapped twice"),
    ("version: 1\norganisations: {a: {projects: {p: {scopes: {openstack: ['1']}}}}}\n", "scopes.openstack", "unknown platform"),
    ("version: 1\norganisations: {a: {projects: {}}}\n", "organisations.a.projects", "at least one project"),
    ("version: 1\norganisations: {unassigned: {projects: {p: {scopes: {aws: ['1']}}}}}\n", "organisations.unassigned", "reserved"),
    ("version: 1\nprojects: {p: {scopes: {aws: ['1']}}}\n", "tenancy.yaml", "unknown key(s) 'projects'"),
    ("version: 1\norganisations: {a: {projects: {p: {scopes: {aws: []}}}}}\n", "scopes.aws", "non-empty list"),
    ("[1, 2]\n", "tenancy.yaml", "expected a mapping"),
    ("version: 1\norganisations: {a: [\n", "tenancy.yaml", ""),  # YAML syntax error
])
def test_bad_files_are_refused_naming_file_key_and_problem(tmp_path, text, where, problem):
    path = _write(tmp_path, text)
    with pytest.raises(model.TenancyError) as err:
        model.load(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert where in message and problem in message, message


def test_missing_file_is_named(tmp_path):
    with pytest.raises(model.TenancyError, match="tenancy file not found"):
        model.load(tmp_path / "nope.yaml")


def test_stamp_sets_org_and_lists_unmapped_scopes(tmp_path):
    tenancy = model.load(_write(tmp_path, GOOD))
    rows = [{"platform": "aws", "account": "111"}, {"platform": "aws", "account": "999"},
            {"platform": "aws", "account": "999"}, {"platform": "gcp", "account": "initech-dev"}]
    assert tenancy.stamp(rows) == [("aws", "999")]
    assert [(r["org"], r["project"]) for r in rows] == [("acme", "web"), ("unassigned", "unassigned"),
                                                        ("unassigned", "unassigned"), ("initech", "lab")]


def _vm(asset_id: str, account: str, **extra) -> dict:
    return {"asset_id": asset_id, "platform": "aws", "account": account, "region": "eu-west-2", "name": asset_id,
            "state": "running", "discovered_at": datetime(2026, 11, 20, tzinfo=UTC), **extra}


def test_contract_is_1_1_with_nullable_org_and_project():
    assert CONTRACT_VERSION == "1.1"
    assert INVENTORY_SCHEMA.field("org").nullable and INVENTORY_SCHEMA.field("project").nullable
    assert INVENTORY_SCHEMA.metadata[b"qlrf.contract_version"] == b"1.1"


def test_reader_fills_org_for_1_0_rows_and_keeps_stamped_ones(tmp_path):
    tenancy = model.load(_write(tmp_path, GOOD))
    old = inventory_table([_vm("i-1", "111"), _vm("i-2", "999")]).drop_columns(["org", "project"])  # a 1.0 partition
    path = str(tmp_path / "old.parquet")
    import pyarrow.parquet as pq

    pq.write_table(old, path)
    con = sql.connect()
    model.relation(con, "inventory", path, tenancy)
    assert sorted(con.sql("SELECT asset_id, org, project FROM inventory").fetchall()) == [
        ("i-1", "acme", "web"), ("i-2", "unassigned", "unassigned")]
    # A 1.1 row keeps the org it was stamped with (history does not move when the file changes); a null is filled.
    new = inventory_table([_vm("i-3", "111", org="initech", project="lab"), _vm("i-4", "111")])
    model.relation(con, "inventory", new, tenancy)
    assert sorted(con.sql("SELECT asset_id, org, project FROM inventory").fetchall()) == [
        ("i-3", "initech", "lab"), ("i-4", "acme", "web")]


def test_reader_without_account_or_org_gets_unassigned(tmp_path):
    tenancy = model.load(_write(tmp_path, GOOD))
    con = sql.connect()
    model.relation(con, "scores", pa.table({"site": ["lon1"], "vms": [3]}), tenancy)
    assert con.sql("SELECT org, project FROM scores").fetchall() == [("unassigned", "unassigned")]


def test_check_lists_unmapped_scopes_and_empty_orgs(tmp_path):
    tenancy = model.load(_write(tmp_path, GOOD))
    result = model.check(tenancy, {("aws", "111"): 3, ("aws", "555"): 2}, "2026-11-20")
    assert not result.ok
    assert result.unmapped == (("aws", "555", 2),)
    assert result.empty_orgs == ("initech",)
    assert result.by_org == {"acme": 3, "unassigned": 2}
    text = "\n".join(result.lines(tenancy.source))
    assert "UNMAPPED aws scope '555': 2 VM(s)" in text and "organisation 'initech' has no VM" in text


def test_a_fully_stamped_partition_is_read_as_written_without_the_mapping(tmp_path):
    """Footer statistics say org/project have no null: the reader registers the file as is (no join), so a
    million-VM 1.1 partition costs nothing extra; the stamped values win even against a changed mapping."""
    import pyarrow.parquet as pq

    path = str(tmp_path / "new.parquet")
    pq.write_table(inventory_table([_vm("i-1", "111", org="initech", project="lab")]), path)
    con = sql.connect()
    model.relation(con, "inventory", path, model.load(_write(tmp_path, GOOD)))
    assert con.sql("SELECT org, project FROM inventory").fetchall() == [("initech", "lab")]
    assert "inventory__scopes" not in {r[0] for r in con.sql("SHOW TABLES").fetchall()}


def test_an_org_arriving_with_a_row_is_overwritten_by_the_scope_mapping(tmp_path):
    """A tenant id injected upstream (a tag copied into the row, a crafted export) never decides the org."""
    tenancy = model.load(_write(tmp_path, GOOD))
    rows = [{"platform": "aws", "account": "111", "org": "initech", "project": "lab", "tags": {"org": "initech"}},
            {"platform": "aws", "account": "999", "org": "acme"}]
    assert tenancy.stamp(rows) == [("aws", "999")]
    assert [(r["org"], r["project"]) for r in rows] == [("acme", "web"), ("unassigned", "unassigned")]
