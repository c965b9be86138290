import pytest

from qlrf.tenancy import AccessDenied, Grant, authorise
from qlrf.tenancy.claims import ClaimError, grants_from_claims, parse_grant, principal_from_claims


def test_grants_parse_role_org_and_project_and_are_case_insensitive():
    assert parse_grant("Approver@ACME") == Grant("approver", "acme")
    assert parse_grant("viewer@acme/Payments") == Grant("viewer", "acme", "payments")
    assert parse_grant("admin@*") == Grant("admin", "*")
    assert grants_from_claims({"qlrf_roles": "viewer@acme, operator@initech"}) == (
        Grant("viewer", "acme"), Grant("operator", "initech"))
    assert grants_from_claims({}) == ()


@pytest.mark.parametrize("bad", ["approver", "@acme", "root@acme", "viewer@*/payments", "viewer@"])
def test_a_bad_grant_is_refused_by_name_not_skipped(bad):
    with pytest.raises(ClaimError, match="grant"):
        parse_grant(bad)


def test_a_claim_of_the_wrong_type_is_refused():
    with pytest.raises(ClaimError, match="expected a list"):
        grants_from_claims({"qlrf_roles": {"admin": "*"}})


def test_principal_from_claims_merges_the_local_table_and_enforces():
    p = principal_from_claims({"email": " Alice@Example.COM ", "qlrf_roles": ["operator@acme"]},
                              stored=[Grant("approver", "initech")])
    assert p.name == "alice@example.com" and p.mode == "signed_in"
    authorise(p, "propose", "acme")
    authorise(p, "approve", "initech")
    with pytest.raises(AccessDenied, match="alice@example.com may not approve in acme"):
        authorise(p, "approve", "acme")
    with pytest.raises(ClaimError, match="identity claims"):
        principal_from_claims({"qlrf_roles": ["admin@*"]})
