"""`qlrf ask`: the new user's path over a materialised day, identity, exit codes and the --json shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from qlrf import cli
from qlrf.ai import orchestrator as orchestrator_module
from qlrf.remediation.approvals import TaskStore
from qlrf.remediation.findings import findings_from_partition
from qlrf.remediation.planner import build_plans
from qlrf.remediation.policy import RemediationPolicy
from qlrf.remediation.service import registry_for, scaling_groups_for
from qlrf.warehouse import Warehouse
from tests.ai.orchestrator.conftest import Scripted, proposal
from tests.tenancy.support import grant, local_operator

PATCH = "patch the revoked images in syd1 dev"
JSON_KEYS = {"intent", "agent", "task_type", "answer", "citations", "tool_calls", "task_spec", "task_id", "validation",
             "refused_by", "source", "notes", "usage"}


@pytest.fixture()
def scripted(monkeypatch):
    """The proposers `qlrf ask` gets: scripted stand-ins for the router built elsewhere."""
    def use(*proposers):
        monkeypatch.setattr(orchestrator_module, "default_proposers", lambda env=None: list(proposers))
    return use


def test_new_user_path_patch_request_ends_as_a_pending_task_in_approvals_list(
        materialized_day, isolated_env, monkeypatch, scripted, capsys):
    warehouse, day = materialized_day
    monkeypatch.setenv("QLRF_WAREHOUSE", str(warehouse))
    local_operator(monkeypatch, "Alice@Example.com", "operator@unassigned")  # asking needs the operator role
    scripted(Scripted("patch", "remediate_drift", lambda i: proposal(i, site="syd1", environment="dev"),
                      tools=(("get_drift_status", {"site": "syd1", "environment": "dev"}),)))
    assert cli.main(["ask", PATCH]) == 0
    out = capsys.readouterr().out
    [task] = TaskStore().list()
    assert f"qlrf approvals show {task.id}" in out and "policy       passed" in out
    assert task.state == "pending_approval" and task.requested_by == "alice@example.com" and task.site == "syd1"

    # Bound to a plan the planner itself builds for that day's syd1 dev finding, hash and all.
    wh, policy = Warehouse(str(warehouse)), RemediationPolicy.load()
    hashes = set()
    for platform in ("aws", "azure", "gcp", "vsphere"):
        if not wh.exists("vm_drift", day, platform):
            continue
        for finding in findings_from_partition(wh.source("drift_scores", day, platform), wh.source("vm_drift", day, platform),
                                               policy, day):
            if (finding.site, finding.environment) == ("syd1", "dev"):
                hashes |= {p.sealed().content_hash for p in build_plans(
                    finding, wh.source("vm_drift", day, platform), registry_for(wh, day, platform), policy,
                    scaling_groups_for(wh, day, platform), created_by=task.requested_by)}
    assert task.plan_hash in hashes and task.plan().metadata.environment == "dev"

    assert cli.main(["approvals", "list", "--state", "pending_approval"]) == 0
    listing = capsys.readouterr().out
    assert task.id in listing and "patch" in listing and task.plan_hash in listing


def test_ai_tasks_show_their_kind_in_approvals_list(isolated_env, capsys):
    from qlrf.ai.tasks import task_document
    from tests.remediation.support import PENDING
    from tests.remediation.test_ai_task_kind import ai_spec

    task = TaskStore().propose_ai_task(task_document(ai_spec("dr_drill", "staging")), "cli:alice", PENDING)
    assert cli.main(["approvals", "list"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if task.id in line)
    assert "ai:dr_drill" in line and "pending_approval" in line
    assert cli.main(["approvals", "list", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["kind"], row["task_type"]) == ("ai_task", "dr_drill")
    assert cli.main(["approvals", "show", task.id]) == 0
    assert "ai task     dr_drill by agent dr" in capsys.readouterr().out


def test_as_is_refused_outside_trusted_local_mode(isolated_env, monkeypatch, scripted, capsys):
    monkeypatch.delenv("QLRF_CLI_TRUSTED_LOCAL_USER", raising=False)
    monkeypatch.delenv("QLRF_ID_TOKEN", raising=False)
    assert cli.main(["ask", "which VMs drift?", "--as", "bob"]) == 4
    assert "--as: only allowed in trusted local mode (QLRF_CLI_TRUSTED_LOCAL_USER=<operator>)" in capsys.readouterr().err
    assert cli.main(["ask", "which VMs drift?"]) == 4  # no sign-in either: nobody to ask as
    assert "nobody is signed in: set QLRF_ID_TOKEN" in capsys.readouterr().err
    local_operator(monkeypatch, "operator", "operator@unassigned")
    assert cli.main(["ask", "x", "--as", "bob"]) == 4  # bob is vouched for, but holds no role
    assert "bob may not read in unassigned: that needs the viewer role, they hold no role" in capsys.readouterr().err
    assert TaskStore().list() == []


def test_a_refusal_exits_2_naming_its_step(isolated_env, scripted, capsys, monkeypatch):
    local_operator(monkeypatch, "operator", "operator@unassigned")
    scripted(Scripted("patch", "remediate_drift", None))
    assert cli.main(["ask", "   "]) == 2
    out = capsys.readouterr().out
    assert "Refused at the screen step: intent: is empty" in out and "refused by the screen step" in out


@pytest.mark.slow
def test_ask_json_prints_exactly_the_ask_result(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QLRF_", "DAGSTER_"))}
    env["QLRF_HOME"] = str(tmp_path / "home")
    env["QLRF_CLI_TRUSTED_LOCAL_USER"] = "operator"
    grant("operator", "operator@unassigned", url=f"sqlite:///{tmp_path / 'home' / 'qlrf.db'}")
    for intent in ("", "which prod VMs in syd1 still run revoked images?"):
        done = subprocess.run([sys.executable, "-m", "qlrf.cli", "ask", intent, "--json"], capture_output=True, text=True,
                              env=env, timeout=120)
        doc = json.loads(done.stdout)
        assert set(doc) >= JSON_KEYS and doc["intent"] == intent and doc["source"] in ("model", "offline")
        assert done.returncode == (2 if doc["refused_by"] else 0), done.stderr
        assert all(set(step) == {"step", "outcome", "detail"} for step in doc["validation"])
    assert json.loads(subprocess.run([sys.executable, "-m", "qlrf.cli", "ask", "", "--json"], capture_output=True,
                                     text=True, env=env, timeout=120).stdout)["refused_by"] == "screen"
