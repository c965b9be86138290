"""Terraform-managed estates (issue 12 item 4): routing, the code patch, the plan-file evidence gate and
the approval bound to the evidence hash. The plan files in terraform_plans/ are recorded in the real
`terraform show -json` format (no Terraform binary exists on this machine)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from qlrf.cli import main
from qlrf.remediation.approvals import EvidenceRefused, TaskStore
from qlrf.remediation.audit import AuditLog
from qlrf.remediation.executor import execute_plan
from qlrf.remediation.gate import Gate
from qlrf.remediation.terraform import TerraformError, TerraformEstate, make_patch, route_plans
from qlrf.remediation.tf_evidence import check_evidence, evidence_gate, file_sha256, record_evidence
from tests.remediation.support import NOW, PENDING, Clock, kinds, make_plan, sqlite_task_store
from tests.tenancy.support import grant, local_operator

PLANS = Path(__file__).parent / "terraform_plans"
OLD, GOLDEN = "ami-0a1b2c3d4e5f60708", "ami-0f1e2d3c4b5a69788"
RESOURCES = ["aws_instance.web[0]", "aws_instance.web[1]"]


def estate(repo: Path, **over) -> TerraformEstate:
    doc = {"name": "web-prod", "match": {"platform": "aws", "site": "lon1"}, "repo": str(repo),
           "path_glob": "envs/prod/*.auto.tfvars.json", "json_pointer": "/golden_ami", "resources": RESOURCES}
    return TerraformEstate.model_validate({**doc, **over})


@pytest.fixture()
def repo(tmp_path) -> Path:
    root = tmp_path / "infra"
    (root / "envs/prod").mkdir(parents=True)
    (root / "envs/prod/image.auto.tfvars.json").write_text(json.dumps({"golden_ami": OLD, "instance_count": 2}, indent=2) + "\n")
    (root / "envs/prod/main.tfvars").write_text(f'region = "eu-west-1"\nweb_ami   = "{OLD}"  # pinned by qlrf\n')
    return root


@pytest.fixture(scope="module")
def gate():
    return evidence_gate()


def tf_plan(repo: Path, **over):
    [plan] = route_plans([make_plan(to_ref=GOLDEN).sealed()], [estate(repo, **over)])
    return plan


def test_declared_estate_routes_the_plan_to_terraform_and_changes_its_hash(repo):
    plain = make_plan(to_ref=GOLDEN).sealed()
    plan = tf_plan(repo)
    assert plan.spec.terraform.source == "policy:web-prod" and plan.spec.terraform.expected_resources == RESOURCES
    assert plan.content_hash == plan.compute_hash() != plain.content_hash
    assert "terraform:" in plan.to_yaml() and "terraform:" not in plain.to_yaml()  # plans without it keep their hash
    elsewhere = route_plans([plain], [estate(repo, match={"site": "sfo1"})])
    assert elsewhere == [plain]


def test_tagged_target_without_a_declared_estate_is_not_planned(repo):
    notes: list[str] = []
    plain = make_plan(to_ref=GOLDEN).sealed()
    assert route_plans([plain], [], {"i-1": {"managed-by": "terraform"}}, notes=notes) == []
    assert len(notes) == 1 and "tag:managed-by=terraform" in notes[0] and "no terraform.estates entry" in notes[0]
    [tagged] = route_plans([plain], [estate(repo, match={"site": "other"})], {"i-1": {"terraform": "true",
                                                                                        "terraform-estate": "web-prod"}})
    assert tagged.spec.terraform.source == "tag:terraform=true"


def test_patch_rewrites_the_json_pointer_and_leaves_the_repo_alone(repo):
    before = (repo / "envs/prod/image.auto.tfvars.json").read_text()
    patch = make_patch(tf_plan(repo))
    diff = patch.diff()
    assert f'-  "golden_ami": "{OLD}",' in diff and f'+  "golden_ami": "{GOLDEN}",' in diff
    assert diff.startswith("--- a/envs/prod/image.auto.tfvars.json\n+++ b/envs/prod/image.auto.tfvars.json")
    assert (repo / "envs/prod/image.auto.tfvars.json").read_text() == before
    assert json.loads(patch.changes[0].after) == {"golden_ami": GOLDEN, "instance_count": 2}


def test_patch_rewrites_an_hcl_variable(repo):
    diff = make_patch(tf_plan(repo, path_glob="envs/*/main.tfvars", json_pointer=None, hcl_variable="web_ami")).diff()
    assert f'-web_ami   = "{OLD}"  # pinned by qlrf' in diff and f'+web_ami   = "{GOLDEN}"  # pinned by qlrf' in diff
    assert "region" not in "".join(line for line in diff.splitlines() if line.startswith(("+r", "-r")))


def test_pattern_matching_nothing_is_a_named_refusal(repo):
    with pytest.raises(TerraformError, match=r"path pattern 'envs/staging/\*.auto.tfvars.json' matches no file"):
        make_patch(tf_plan(repo, path_glob="envs/staging/*.auto.tfvars.json"))
    with pytest.raises(TerraformError, match=r"JSON pointer /image/ami not found"):
        make_patch(tf_plan(repo, json_pointer="/image/ami"))
    with pytest.raises(TerraformError, match=r"no `ami_id = \"...\"` assignment"):
        make_patch(tf_plan(repo, path_glob="envs/prod/main.tfvars", json_pointer=None, hcl_variable="ami_id"))


def test_patch_committed_on_a_branch(repo):
    def git(*args):
        return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "-m", "infra")
    from qlrf.remediation.terraform import commit_branch

    commit = commit_branch(make_patch(tf_plan(repo)), "qlrf/pin-golden", "pin golden")
    assert git("rev-parse", "qlrf/pin-golden") == commit
    assert GOLDEN in git("show", "qlrf/pin-golden:envs/prod/image.auto.tfvars.json")


@pytest.mark.parametrize(("name", "allow", "expected"), [
    ("replace_ok.json", True, []),
    ("other_image.json", False, ["resource_changes[1]: the image attribute after the change is not the golden image "
                                 "[aws_instance.web[1]]"]),
    ("extra_resource.json", False, ["resource_changes[3]: changes a resource the patch does not touch (only the expected "
                                    "resources may change) [aws_db_instance.main]"]),
    ("deletion.json", False, ["resource_changes[3]: changes a resource the patch does not touch (only the expected "
                              "resources may change) [aws_s3_bucket.logs]",
                              "resource_changes[3]: deletes a resource without re-creating it [aws_s3_bucket.logs]"]),
])
def test_evidence_gate_on_recorded_plan_files(repo, gate, name, allow, expected):
    data = (PLANS / name).read_bytes()
    evidence = check_evidence(tf_plan(repo), data, gate, name)
    assert evidence.allow is allow
    assert sorted(evidence.reasons) == sorted(expected)
    assert evidence.sha256 == file_sha256(data)


def test_evidence_gate_names_an_expected_resource_the_plan_leaves_alone(repo, gate):
    plan = tf_plan(repo, resources=[*RESOURCES, "aws_instance.web[2]"])
    evidence = check_evidence(plan, (PLANS / "replace_ok.json").read_bytes(), gate)
    assert evidence.reasons == ("expected.resources[2]: the plan does not change this expected resource [aws_instance.web[2]]",)
    junk = check_evidence(plan, b'{"resource_changes": "x"}', gate)
    assert not junk.allow and any("format_version" in r for r in junk.reasons)


def test_approval_binds_to_the_accepted_plan_file(tmp_path, repo, gate):
    store = sqlite_task_store(tmp_path, Clock(NOW))
    plan = tf_plan(repo)
    task = store.propose(plan, "sensor:drift_breach", PENDING)
    with pytest.raises(EvidenceRefused, match="record an accepted terraform plan file first"):
        store.approve(task.id, plan.content_hash, "alice", "ok")
    refused = record_evidence(store, task.id, PLANS / "other_image.json", gate, actor="cli:bob")
    assert not refused.allow
    with pytest.raises(EvidenceRefused, match="record an accepted terraform plan file first"):
        store.approve(task.id, plan.content_hash, "alice", "ok", evidence_hash=refused.sha256)
    ok = record_evidence(store, task.id, PLANS / "replace_ok.json", gate, actor="cli:bob")
    with pytest.raises(EvidenceRefused, match="a different file is not the one checked"):
        store.approve(task.id, plan.content_hash, "alice", "ok", evidence_hash=file_sha256(b"another file"))
    assert store.get(task.id).state == "pending_approval"
    approved = store.approve(task.id, plan.content_hash, "alice", "checked plan", evidence_hash=ok.sha256)
    assert approved.state == "approved"
    record = store.audit.records(subject=task.id, kind="approval")[-1]
    assert record.data["evidence_sha256"] == ok.sha256
    assert [r.data["allow"] for r in store.audit.records(subject=task.id, kind="terraform_evidence")] == [False, True]


def test_plain_plans_take_no_evidence(tmp_path, gate):
    store = sqlite_task_store(tmp_path, Clock(NOW))
    plan = make_plan(to_ref=GOLDEN).sealed()
    task = store.propose(plan, "sensor:drift_breach", PENDING)
    with pytest.raises(TerraformError, match="not Terraform-managed"):
        record_evidence(store, task.id, PLANS / "replace_ok.json", gate, actor="cli:bob")
    with pytest.raises(EvidenceRefused, match="takes no evidence hash"):
        store.approve(task.id, plan.content_hash, "alice", "ok", evidence_hash="sha256:" + "0" * 64)


class NoCalls:
    """A driver that fails the test on any call: a Terraform-managed plan must not reach the cloud API."""

    def __getattr__(self, name):
        raise AssertionError(f"driver.{name} called for a Terraform-managed plan")


def test_executor_never_runs_a_terraform_plan_through_a_driver(tmp_path, repo):
    audit = AuditLog(f"sqlite:///{tmp_path / 'audit.db'}")
    plan = tf_plan(repo)
    result = execute_plan(plan, driver=NoCalls(), gate=Gate.embedded(), audit=audit, requested_by="cli:alice",
                          approval={"plan_hash": plan.content_hash, "approver": "bob"}, fleet_size=100, now=NOW,
                          log=lambda _: None)
    assert result.state == "blocked" and "Terraform-managed" in result.reason
    assert kinds(audit) == ["execution_end"]


@pytest.mark.slow
def test_cli_patch_and_evidence(tmp_path, repo, monkeypatch, capsys):
    monkeypatch.setenv("QLRF_HOME", str(tmp_path / "home"))
    for var in ("QLRF_POSTGRES_URL", "QLRF_OPA_URL", "QLRF_AUDIT_DIR"):
        monkeypatch.delenv(var, raising=False)
    store = TaskStore(audit=AuditLog())
    plan = tf_plan(repo)
    task = store.propose(plan, "sensor:drift_breach", PENDING)
    local_operator(monkeypatch, "operator")
    grant("alice", "approver@*")
    assert main(["plan", "terraform", task.id, "--repo", str(repo), "--out", str(tmp_path / "pin.patch")]) == 0
    assert f'+  "golden_ami": "{GOLDEN}",' in (tmp_path / "pin.patch").read_text()
    assert main(["plan", "terraform", task.id, "--repo", str(tmp_path)]) == 2  # no envs/prod there: named refusal
    assert "matches no file" in capsys.readouterr().err
    assert main(["plan", "evidence", task.id, str(PLANS / "deletion.json")]) == 1
    assert "[aws_s3_bucket.logs]" in capsys.readouterr().err
    assert main(["plan", "evidence", task.id, str(PLANS / "replace_ok.json")]) == 0
    digest = file_sha256((PLANS / "replace_ok.json").read_bytes())
    assert digest in capsys.readouterr().out
    assert main(["approvals", "approve", task.id, "--hash", plan.content_hash, "--as", "alice", "--reason", "ok",
                 "--evidence-hash", file_sha256(b"x")]) == 2
    assert main(["approvals", "approve", task.id, "--hash", plan.content_hash, "--as", "alice", "--reason", "ok",
                 "--evidence-hash", digest]) == 0
    assert store.get(task.id).state == "approved"


def test_an_approved_terraform_task_is_not_launched_by_the_execution_sensor(tmp_path, repo, gate):
    store = sqlite_task_store(tmp_path, Clock(NOW))
    plan = tf_plan(repo)
    task = store.propose(plan, "sensor:drift_breach", PENDING)
    evidence = record_evidence(store, task.id, PLANS / "replace_ok.json", gate, actor="cli:bob")
    store.approve(task.id, plan.content_hash, "alice", "checked", evidence_hash=evidence.sha256)
    plain = store.propose(make_plan("plan-2", to_ref=GOLDEN).sealed(), "sensor:drift_breach", PENDING)
    store.approve(plain.id, plain.plan_hash, "alice", "ok")
    assert [t.id for t in store.approved_waiting()] == [plain.id]


def test_the_approval_card_says_how_the_change_is_delivered(repo):
    from dashboards.data.tasks import change_text

    text = change_text(tf_plan(repo).spec)
    assert text.startswith(f"ubuntu-22.04 3.0.0 ({GOLDEN}); Terraform-managed (policy:web-prod)")
    assert "terraform plan file's hash" in text
