"""Issue 14, "Bad input and attacks": each test is one attempt to act without the right, through the
CLI, the HTTP API or an inbound event. It holds when the attempt is refused with a clear message, an
``access_denied`` audit record names who tried what and why, and nothing changed (the task is still
pending, no grant was added).

The tally (``access attacks: N attempts, N refused``) is printed by the last test of this file (run
with ``-s``) and in pytest's terminal summary (tests/tenancy/conftest.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import jwt
import pytest

from qlrf.cli import main
from qlrf.events.inbound import approver_for, process
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.tenancy.enforce import DENIED_EXIT, document_org, task_org
from qlrf.tenancy.roles import Grant
from qlrf.tenancy.store import GrantStore
from tests.api.support import ALICE, BOB, CAROL, client_for
from tests.remediation.support import PENDING, make_plan
from tests.tenancy.issuer import OidcIssuer
from tests.tenancy.support import ATTACKS, TEST_ADMIN

pytestmark = pytest.mark.fault

SIGN_IN_VARIABLES = ("QLRF_CLI_TRUSTED_LOCAL_USER", "QLRF_ID_TOKEN", "QLRF_OIDC_ISSUER", "QLRF_OIDC_AUDIENCE",
                     "QLRF_OIDC_JWKS_URL", "QLRF_OIDC_ROLES_CLAIM")


@dataclass
class World:
    store: TaskStore
    grants: GrantStore
    audit: AuditLog
    task: object  # pending, requested by alice@example.com, in the unassigned organisation
    other: object  # a second pending task, requested by a sensor

    def denials(self) -> list:
        return self.audit.records(kind="access_denied")

    def unchanged(self, *tasks) -> None:
        for task in tasks or (self.task, self.other):
            now = self.store.get(task.id)
            assert (now.state, now.approver) == ("pending_approval", None), f"{task.id} changed: {now.state}"


@pytest.fixture(scope="module")
def issuer() -> Iterator[OidcIssuer]:
    with OidcIssuer() as fake:
        yield fake


@pytest.fixture()
def world(isolated_env, monkeypatch) -> World:
    for name in SIGN_IN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    audit = AuditLog()
    store = TaskStore(audit=audit)
    grants = GrantStore(engine=audit.engine, audit=audit)
    # API tokens (tests/api/support.py) sign in alice@example.com, bob and carol: the same names here.
    for name, role in (("alice@example.com", "approver@unassigned"), ("bob", "operator@unassigned"),
                       ("carol", "approver@unassigned"), ("mallory", "approver@acme")):
        grants.grant(name, Grant(*role.split("@")), by=TEST_ADMIN)
    task = store.propose(make_plan("rp-attack"), "Alice@Example.com", PENDING)
    other = store.propose(make_plan("rp-other"), "sensor:drift", PENDING)
    return World(store, grants, audit, task, other)


@pytest.fixture()
def attack(request) -> Iterator:
    """Counts this attempt; the test calls the returned function once every check of the refusal held."""
    ATTACKS["attempts"] += 1
    yield lambda: ATTACKS.__setitem__("refused", ATTACKS["refused"] + 1)


def signed_in(monkeypatch, issuer: OidcIssuer, token: str) -> None:
    for name, value in issuer.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("QLRF_ID_TOKEN", token)


def approve_cli(task, *extra: str) -> int:
    return main(["approvals", "approve", task.id, "--hash", task.plan_hash, "--reason", "looks fine", *extra])


def denied(world: World, capsys, text: str, *, who: str | None, action: str) -> dict:
    """The one stderr line and the newest access_denied record of a refused CLI call."""
    err = capsys.readouterr().err
    assert err.startswith("denied: ") and text in err and len(err.strip().splitlines()) == 1, err
    record = world.denials()[-1]
    assert record.data["who"] == who and record.data["action"] == action and text in record.data["why"]
    return record.data


# --- sign-in: forged, expired, malformed tokens ---------------------------------------------------------------


def test_a_forged_token_is_refused(world, issuer, monkeypatch, capsys, attack):
    now = int(time.time())
    signed_in(monkeypatch, issuer, issuer.forge(issuer.claims(now, email="carol", qlrf_roles=["approver@*"])))
    assert approve_cli(world.task) == DENIED_EXIT
    denied(world, capsys, "QLRF_ID_TOKEN refused: Signature verification failed", who=None, action="sign_in")
    world.unchanged()
    attack()


def test_an_unsigned_alg_none_token_is_refused(world, issuer, monkeypatch, capsys, attack):
    now = int(time.time())
    token = jwt.encode(issuer.claims(now, email="carol"), None, algorithm="none", headers={"kid": "test-key-1"})
    signed_in(monkeypatch, issuer, token)
    assert approve_cli(world.task) == DENIED_EXIT
    denied(world, capsys, "QLRF_ID_TOKEN refused", who=None, action="sign_in")
    world.unchanged()
    attack()


def test_an_expired_token_is_refused(world, issuer, monkeypatch, capsys, attack):
    now = int(time.time())
    claims = {**issuer.claims(now - 7200, email="carol"), "exp": now - 3600}
    signed_in(monkeypatch, issuer, issuer.mint(claims))
    assert approve_cli(world.task) == DENIED_EXIT
    denied(world, capsys, "the token has expired (sign in again)", who=None, action="sign_in")
    world.unchanged()
    attack()


def test_a_token_for_another_audience_is_refused(world, issuer, monkeypatch, capsys, attack):
    now = int(time.time())
    signed_in(monkeypatch, issuer, issuer.mint({**issuer.claims(now, email="carol"), "aud": "some-other-app"}))
    assert approve_cli(world.task) == DENIED_EXIT
    denied(world, capsys, "Audience doesn't match", who=None, action="sign_in")
    world.unchanged()
    attack()


def test_a_token_missing_the_identity_claim_is_refused(world, issuer, monkeypatch, capsys, attack):
    now = int(time.time())
    signed_in(monkeypatch, issuer, issuer.mint(issuer.claims(now, qlrf_roles=["approver@unassigned"])))
    assert approve_cli(world.task) == DENIED_EXIT
    denied(world, capsys, "the token has none of the identity claims email, preferred_username, sub", who=None,
           action="sign_in")
    world.unchanged()
    attack()


def test_a_token_missing_its_expiry_claim_is_refused(world, issuer, monkeypatch, capsys, attack):
    now = int(time.time())
    claims = issuer.claims(now, email="carol")
    del claims["exp"]
    signed_in(monkeypatch, issuer, issuer.mint(claims))
    assert approve_cli(world.task) == DENIED_EXIT
    denied(world, capsys, 'Token is missing the "exp" claim', who=None, action="sign_in")
    world.unchanged()
    attack()


def test_a_malformed_roles_claim_is_refused_not_skipped(world, issuer, monkeypatch, capsys, attack):
    now = int(time.time())
    signed_in(monkeypatch, issuer, issuer.mint(issuer.claims(now, email="bob", qlrf_roles=["root@*"])))
    assert approve_cli(world.task) == DENIED_EXIT
    denied(world, capsys, "grant 'root@*': unknown role 'root'", who=None, action="sign_in")
    world.unchanged()
    attack()


def test_a_valid_token_signs_in_and_its_claims_add_roles(world, issuer, monkeypatch, capsys):
    """The control: the same path with a genuine token works, so the refusals above are not an outage."""
    now = int(time.time())
    signed_in(monkeypatch, issuer, issuer.mint(issuer.claims(now, email="Dave@Example.com",
                                                             qlrf_roles=["approver@unassigned"])))
    assert approve_cli(world.task) == 0
    assert world.store.get(world.task.id).approver == "dave@example.com"


def test_as_is_refused_when_signed_in_rather_than_trusted_local(world, issuer, monkeypatch, capsys, attack):
    now = int(time.time())
    signed_in(monkeypatch, issuer, issuer.mint(issuer.claims(now, email="bob")))
    assert approve_cli(world.task, "--as", "carol") == DENIED_EXIT
    denied(world, capsys, "--as: only allowed in trusted local mode (QLRF_CLI_TRUSTED_LOCAL_USER=<operator>)",
           who="carol", action="sign_in")
    world.unchanged()
    attack()


# --- roles: operator calling approver actions, own plans, role changes mid-session ----------------------------


def test_an_operator_cannot_approve_through_the_cli(world, monkeypatch, capsys, attack):
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "bob")
    assert approve_cli(world.task) == DENIED_EXIT
    data = denied(world, capsys, "bob may not approve in unassigned: that needs the approver role, they hold operator",
                  who="bob", action="approve")
    assert data["org"] == "unassigned" and world.denials()[-1].subject == world.task.id
    world.unchanged()
    attack()


def test_an_operator_cannot_approve_through_the_api(world, tmp_path, attack):
    client = client_for(world.store, tmp_path, grants=False)
    reply = client.post(f"/api/v1/tasks/{world.task.id}/approve", headers=BOB,
                        json={"plan_hash": world.task.plan_hash, "reason": "looks fine"})
    assert reply.status_code == 403 and reply.json()["error"] == "forbidden"
    assert "bob may not approve in unassigned: that needs the approver role, they hold operator" in reply.json()["detail"]
    record = world.denials()[-1]
    assert (record.actor, record.subject, record.data["mode"]) == ("bob", world.task.id, "token")
    world.unchanged()
    attack()


def test_an_operator_cannot_bulk_approve_through_the_cli(world, monkeypatch, capsys, attack):
    from tests.sensors.support import make_plan as low_risk_plan

    low = [world.store.propose(low_risk_plan(f"rp-low-{n}", site=site), "sensor:drift", PENDING)
           for n, site in enumerate(("fra1", "lon1"))]
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "bob")
    assert main(["approvals", "approve", "--bulk", "--risk", "low", "--reason", "routine"]) == 1
    err = capsys.readouterr().err
    assert err.count("access denied: bob may not approve in unassigned") == 2 and "0 task(s) approved, 2 refused" in err
    assert sorted(r.subject for r in world.denials()) == sorted(t.id for t in low)
    world.unchanged(*low)
    attack()


def test_a_user_without_a_role_in_the_org_cannot_ask_the_ai(world, monkeypatch, capsys, attack):
    """Answers need the viewer role in the organisation (proposals the operator role: a viewer's proposal
    is refused at the AI's task step, tests/ai/orchestrator/test_roles.py)."""
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "mallory")  # approver@acme only
    assert main(["ask", "patch every VM in syd1 dev", "--org", "globex"]) == DENIED_EXIT
    denied(world, capsys, "mallory may not read in globex: that needs the viewer role, they hold no role",
           who="mallory", action="read")
    assert [t.id for t in world.store.list()] == [world.task.id, world.other.id]
    attack()


def test_an_operator_cannot_run_a_production_drill(world, tmp_path, monkeypatch, capsys, attack):
    """Drills in dev and staging are an operator's; production needs an approver (``drill_production``).
    Refused before any driver, gate or warehouse is touched: no task is proposed."""
    from tests.dr.support import drill_plan

    path = tmp_path / "prod-drill.yaml"
    path.write_text(drill_plan(environment="prod").to_yaml())
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "bob")
    assert main(["dr", "drill", str(path), "--yes"]) == DENIED_EXIT
    denied(world, capsys, "bob may not drill_production in unassigned: that needs the approver role, they hold operator",
           who="bob", action="drill_production")
    assert [t.id for t in world.store.list()] == [world.task.id, world.other.id]
    attack()


def test_an_operator_cannot_modify_through_the_cli_and_an_approver_can(world, tmp_path, monkeypatch, capsys, attack):
    edited = tmp_path / "edited.yaml"
    edited.write_text(make_plan("rp-attack", to_ref="ami-0000000000000ccc3").to_yaml())
    args = ["approvals", "modify", world.task.id, "--hash", world.task.plan_hash, "--plan", str(edited), "--reason", "newer"]
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "bob")
    assert main(args) == DENIED_EXIT
    denied(world, capsys, "bob may not approve in unassigned", who="bob", action="approve")
    world.unchanged()
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "carol")  # the control: an approver's edit goes through
    assert main(args) == 0
    assert f"supersedes {world.task.id}" in capsys.readouterr().out
    assert world.store.get(world.task.id).state == "rejected"
    attack()


def test_an_operator_cannot_continue_a_paused_plan(world, monkeypatch, capsys, attack):
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "bob")
    assert main(["plan", "continue", world.task.id, "--hash", world.task.plan_hash, "--reason", "go"]) == DENIED_EXIT
    denied(world, capsys, "bob may not approve in unassigned", who="bob", action="approve")
    world.unchanged()
    attack()


def test_an_approver_cannot_approve_their_own_plan_through_the_cli(world, monkeypatch, capsys, attack):
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "ALICE@example.com")  # case differs: still the requester
    assert approve_cli(world.task) == 2
    assert "self-approval refused: alice@example.com requested this plan" in capsys.readouterr().err
    record = world.denials()[-1]
    assert record.data["who"] == "alice@example.com" and "self-approval refused" in record.data["why"]
    world.unchanged()
    attack()


def test_an_approver_cannot_approve_their_own_plan_through_the_api(world, tmp_path, attack):
    client = client_for(world.store, tmp_path, grants=False)
    reply = client.post(f"/api/v1/tasks/{world.task.id}/approve", headers=ALICE,
                        json={"plan_hash": world.task.plan_hash, "reason": "mine, fine"})
    assert reply.status_code == 403 and reply.json()["error"] == "self_approval"
    assert world.denials()[-1].data["who"] == "alice@example.com"
    world.unchanged()
    attack()


def test_a_revoked_role_counts_from_the_next_action_in_the_same_api_session(world, tmp_path, attack):
    client = client_for(world.store, tmp_path, grants=False)
    first = client.post(f"/api/v1/tasks/{world.other.id}/reject", headers=CAROL,
                        json={"plan_hash": world.other.plan_hash, "reason": "not this week"})
    assert first.status_code == 200 and first.json()["state"] == "rejected"
    world.grants.revoke("carol", Grant("approver", "unassigned"), by=TEST_ADMIN)  # mid-session, same token
    second = client.post(f"/api/v1/tasks/{world.task.id}/approve", headers=CAROL,
                         json={"plan_hash": world.task.plan_hash, "reason": "looks fine"})
    assert second.status_code == 403 and "carol may not approve in unassigned" in second.json()["detail"]
    assert "they hold no role" in world.denials()[-1].data["why"]
    world.unchanged(world.task)
    attack()


def test_a_revoked_role_counts_from_the_next_cli_action(world, monkeypatch, capsys, attack):
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "carol")
    assert main(["approvals", "reject", world.other.id, "--hash", world.other.plan_hash, "--reason", "no"]) == 0
    world.grants.revoke("carol", Grant("approver", "unassigned"), by=TEST_ADMIN)
    assert approve_cli(world.task) == DENIED_EXIT
    denied(world, capsys, "carol may not approve in unassigned", who="carol", action="approve")
    world.unchanged(world.task)
    attack()


def test_an_operator_cannot_grant_themselves_a_role(world, monkeypatch, capsys, attack):
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "bob")
    assert main(["users", "grant", "bob", "approver@unassigned"]) == DENIED_EXIT
    denied(world, capsys, "bob may not admin in unassigned: that needs the admin role", who="bob", action="admin")
    assert world.grants.grants_for("bob") == (Grant("operator", "unassigned"),)
    attack()


def test_an_org_admin_cannot_grant_across_every_organisation(world, monkeypatch, capsys, attack):
    world.grants.grant("erin", Grant("admin", "acme"), by=TEST_ADMIN)
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "erin")
    assert main(["users", "grant", "erin", "admin@*"]) == DENIED_EXIT
    denied(world, capsys, "erin may not admin in *", who="erin", action="admin")
    assert world.grants.grants_for("erin") == (Grant("admin", "acme"),)
    attack()


def test_a_second_admin_cannot_be_bootstrapped(world, monkeypatch, capsys, attack):
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "bob")
    assert main(["users", "add", "bob", "--admin"]) == 0  # the table has no admin yet: the operator bootstraps
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "mallory")
    assert main(["users", "add", "mallory", "--admin"]) == DENIED_EXIT
    capsys.readouterr()
    assert "the role table already has one" in world.denials()[-1].data["why"]
    assert Grant("admin", "*") not in world.grants.grants_for("mallory")
    attack()


# --- tenant ids injected through an event or a tag ------------------------------------------------------------


def _approve_event(task, source: str, **extra) -> bytes:
    return json.dumps({"specversion": "1.0", "id": "ev-1", "source": source, "type": "io.resiliencefabric.task.approve",
                       "subject": f"task/{task.id}", "datacontenttype": "application/json",
                       "data": {"task_id": task.id, "plan_hash": task.plan_hash, "reason": "ship it"}, **extra}).encode()


def test_a_tenant_id_in_an_event_is_not_trusted(world, attack):
    """mallory approves for acme only; the event claims the task is acme's. The task's organisation is
    read from the store (unassigned), so the approval is refused and recorded."""
    body = _approve_event(world.task, "/chatops/bot", orgid="acme", tenant="acme")
    tick = process([(1, body)], cursor=0, today="2026-11-27", approve=approver_for(world.store),
                   trusted={"/chatops/bot": "mallory"}, platforms=("aws",))
    assert tick.approved == [] and len(tick.rejections) == 1
    assert "mallory may not approve in unassigned: that needs the approver role, they hold no role" \
        in tick.rejections[0].reason
    record = world.denials()[-1]
    assert (record.actor, record.subject, record.data["org"]) == ("mallory", world.task.id, "unassigned")
    world.unchanged()
    attack()


def _acme_plan():
    from qlrf.remediation.plans import parse_plan

    doc = make_plan("rp-acme").model_dump(mode="json", exclude={"content_hash"})
    doc["metadata"]["org"] = "acme"
    return parse_plan(json.dumps(doc), "acme plan").sealed()


def test_an_approver_of_another_organisation_cannot_approve(world, monkeypatch, capsys, attack):
    """carol approves for unassigned; the task is acme's (its plan's metadata.org). Refused, and the
    refusal joins acme's audit chain, where acme's admins read it. mallory (approver@acme) may."""
    task = world.store.propose(_acme_plan(), "sensor:drift", PENDING)
    assert task_org(task) == "acme"
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "carol")
    assert approve_cli(task) == DENIED_EXIT
    denied(world, capsys, "carol may not approve in acme: that needs the approver role, they hold no role",
           who="carol", action="approve")
    assert world.denials()[-1].org == "acme"
    world.unchanged(task)
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "mallory")  # the control: acme's approver
    assert approve_cli(task) == 0 and world.store.get(task.id).approver == "mallory"
    attack()


def test_a_tenant_id_in_a_vm_tag_is_not_trusted(world, monkeypatch, capsys, attack):
    """A VM tagged ``org: acme`` (what anyone with tag rights on the VM can write) is planned for; the
    task belongs to the organisation its stored plan names (none here: unassigned), never to a tag's,
    so an acme approver cannot approve it. Tags in a plan's body are not read for the organisation either."""
    from qlrf.remediation.compliance_plans import build_compliance_plans
    from qlrf.remediation.policy import RemediationPolicy

    base = RemediationPolicy.defaults().model_dump(mode="json")
    base["compliance"] = {"tag_defaults": [{"match": {"account": "123456789012"}, "tags": {"owner": "team-web"}}]}
    vm = {"asset_id": "i-0000000000000a001", "platform": "aws", "account": "123456789012", "site": "lon1",
          "environment": "prod", "owner": None, "failed_controls": ["RF-TAG-001"]}
    inventory = {"asset_id": vm["asset_id"], "region": "eu-west-1", "name": "web-001", "state": "running",
                 "tags": {"site": "lon1", "environment": "prod", "org": "acme", "tenant": "acme"}}
    [plan] = build_compliance_plans([vm], [inventory], RemediationPolicy.model_validate(base), "2026-11-28").plans
    task = world.store.propose(plan, "sensor:compliance", PENDING)
    assert task_org(task) == "unassigned"
    tagged = {"metadata": {"id": "x"}, "spec": {"compliance": {"tags": [{"asset_id": "i-1", "tags": {"org": "acme"}}]}}}
    assert document_org(tagged) is None
    monkeypatch.setenv("QLRF_CLI_TRUSTED_LOCAL_USER", "mallory")
    assert approve_cli(task) == DENIED_EXIT
    denied(world, capsys, "mallory may not approve in unassigned", who="mallory", action="approve")
    world.unchanged(task)
    attack()


def _ai_task(org: str | None, site: str = "syd1"):
    from qlrf.ai.tasks import task_document
    from qlrf.ai.taskspec import TaskSpec, parse_proposal
    from qlrf.remediation.policy import RemediationPolicy

    proposal = parse_proposal({"intent": f"rebuild the image for {site}", "agent": "image", "task_type": "rebuild_image",
                               "scope": {"site": site, "environment": "dev", "target_count": 4, "org": org}})
    return task_document(TaskSpec.from_proposal(proposal, policy=RemediationPolicy.load()))


def test_a_modify_cannot_move_a_task_into_another_organisation(world, attack):
    """carol approves for unassigned; her edit of an unassigned task names acme in its scope. The edit
    would create acme work she holds no role in: refused, recorded, the old task still pending."""
    from qlrf.tenancy.enforce import review_modify
    from qlrf.tenancy.roles import AccessDenied

    task = world.store.propose_ai_task(_ai_task(None), "sensor:drift", PENDING)
    carol = world.grants.principal("carol", "token")
    with pytest.raises(AccessDenied, match=f"carol may not modify task {task.id} into organisation acme: "
                                           "the task belongs to unassigned"):
        review_modify(world.store, carol, task.id, task.plan_hash, _ai_task("acme", "mel1"), "wider")
    assert world.denials()[-1].subject == task.id
    world.unchanged(task)
    assert len(world.store.list()) == 3
    edited = review_modify(world.store, carol, task.id, task.plan_hash, _ai_task(None, "mel1"), "other site")
    assert (edited.state, edited.supersedes, edited.requested_by) == ("pending_approval", task.id, "carol")
    attack()


def test_an_org_named_in_an_ask_request_needs_a_role_there(world, tmp_path, attack):
    asked = []
    client = client_for(world.store, tmp_path, grants=False, ask=lambda *a, **k: asked.append(a))
    reply = client.post("/api/v1/ai/execute", headers=BOB, json={"intent": "patch acme's VMs", "org_id": "acme"})
    assert reply.status_code == 403 and "bob may not read in acme" in reply.json()["detail"]
    assert asked == [] and world.denials()[-1].data["org"] == "acme"
    attack()


def test_zz_print_the_tally():
    """Last in the file (``--dist loadfile`` keeps a file on one worker, in order)."""
    line = f"access attacks: {ATTACKS['attempts']} attempts, {ATTACKS['refused']} refused"
    print(f"\n{line}")
    assert ATTACKS["refused"] == ATTACKS["attempts"], line
