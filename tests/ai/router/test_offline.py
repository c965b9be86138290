"""The offline proposer over a real ToolBox: routes, runs the agent's plan, answers with cited tool
values only, proposes a valid TaskProposal for actions, and refuses to guess unknown names."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from qlrf.ai.agents import shipped_agents, violations
from qlrf.ai.answers import Draft
from qlrf.ai.router import OfflineProposer
from qlrf.ai.router.corpus import load_corpus
from qlrf.ai.router.grounding import citation_problems, numbers_not_cited, resolve
from qlrf.ai.taskspec import parse_proposal
from qlrf.ai.tools import AUDIT_KIND
from qlrf.warehouse import Warehouse
from tests.ai.router.support import DAY, Boxes, small_warehouse

FILL = {"{site}": "syd1", "{env}": "prod", "{platform}": "aws", "{family}": "ubuntu 22", "{package}": "openssl@<3.0.8",
        "{date}": "2026-11-20", "{asset}": "i-0002", "{n}": "3"}


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    return small_warehouse(str(tmp_path_factory.mktemp("wh")))


@pytest.fixture()
def boxes(warehouse, tmp_path) -> Boxes:
    return Boxes(warehouse, f"sqlite:///{tmp_path / 'audit.db'}")


def _results(boxes: Boxes, draft: Draft) -> list[tuple[str, dict, dict]]:
    """The draft's tool calls re-run on a fresh ToolBox: what the cited values must equal."""
    box = boxes(draft.agent)
    return [(c["name"], c["arguments"], box.call(c["name"], c["arguments"])) for c in draft.tool_calls]


def _grounded(boxes: Boxes, draft: Draft, names: tuple[str, ...] = ()) -> list[tuple[str, dict, dict]]:
    results = _results(boxes, draft)
    assert citation_problems(draft.citations, results) == []
    assert numbers_not_cited(draft.answer, draft.citations, names) == []
    return results


def test_a_drift_question_answers_with_the_tools_numbers(boxes):
    draft = OfflineProposer(today=DAY).draft(boxes.ask("Which PROD vms in syd1 still run revoked images?"))
    assert (draft.source, draft.agent, draft.task_type) == ("offline", "drift", "answer")
    assert draft.answer.startswith("Offline router (no model): drift agent, answer, scope syd1 prod.")
    assert [(c["name"], c["arguments"], c["status"]) for c in draft.tool_calls] == [
        ("get_drift_status", {"site": "syd1", "environment": "prod"}, "ok"),
        ("query_assets", {"site": "syd1", "environment": "prod", "status": "revoked", "limit": 10}, "ok")]
    results = _grounded(boxes, draft)
    assert "- VMs in syd1 prod on revoked images: 1; first by id: i-0006." in draft.answer  # "which VMs": named
    rows = results[0][2]["rows"]
    assert [(r["vms"], r["revoked"]) for r in rows] == [(1, 1)]  # i-0006 runs the revoked 1.0
    assert "1 VMs, 0 on the current golden image, 1 on revoked images" in draft.answer
    revoked = next(c for c in draft.citations if c.name == "sum(rows[].revoked)")
    assert (revoked.tool, revoked.value) == ("get_drift_status", resolve(results, "get_drift_status", revoked.name))
    assert draft.proposal == {"intent": "Which PROD vms in syd1 still run revoked images?", "agent": "drift",
                              "task_type": "answer", "scope": {"site": "syd1", "environment": "prod"},
                              "tool_calls": [dict(c) for c in draft.tool_calls], "explanation": draft.proposal["explanation"]}


def test_an_action_proposes_a_valid_task_proposal_and_never_autonomy(boxes):
    draft = OfflineProposer(today=DAY).draft(boxes.ask("patch the revoked images in syd1 prod", org="acme"))
    assert (draft.agent, draft.task_type) == ("patch", "remediate_drift")
    proposal = parse_proposal(draft.proposal)
    assert (proposal.task_type, proposal.scope.site, proposal.scope.environment, proposal.scope.org) == (
        "remediate_drift", "syd1", "prod", "acme")
    assert violations(proposal) == []
    assert not {"autonomy_mode", "approval_required", "risk_level", "plan_hash"} & set(draft.proposal)
    assert [c["name"] for c in draft.tool_calls] == ["get_drift_status", "list_pending_tasks"]
    assert "Proposed task: remediate_drift for syd1 prod" in draft.answer
    assert "Pending approval in prod: 0 tasks." in draft.answer
    _grounded(boxes, draft)


def test_every_tool_call_is_audited(boxes):
    draft = OfflineProposer().draft(boxes.ask("how much does lon1 cost per month"))
    records = boxes.audit.records(kind=AUDIT_KIND, limit=50)
    assert [r.data["tool"] for r in records] == [c["name"] for c in draft.tool_calls] == ["estimate_cost"]
    _grounded(boxes, draft)


def test_an_unknown_site_is_said_and_nothing_is_looked_up_or_proposed(boxes):
    draft = OfflineProposer().draft(boxes.ask("patch the revoked images in fra2 prod"))
    assert (draft.task_type, draft.proposal, draft.tool_calls) == ("answer", None, ())
    assert "I don't know site 'fra2'; known sites: fra1, lon1, syd1." in draft.answer
    assert draft.answer.startswith("Offline router (no model)")


def test_an_unknown_family_is_said_with_the_known_ones(boxes):
    draft = OfflineProposer().draft(boxes.ask("rebuild the centos 7 golden image"))
    assert (draft.task_type, draft.proposal) == ("answer", None)
    assert "I don't know image family 'centos-7'; known families: ubuntu-22." in draft.answer


def test_a_misspelt_site_is_read_as_the_known_one_and_said(boxes):
    draft = OfflineProposer().draft(boxes.ask("DR readiness of sydny1"))
    assert (draft.agent, draft.task_type) == ("dr", "answer")
    assert "(read 'sydny1' as syd1)" in draft.answer and draft.tool_calls[0]["arguments"] == {"site": "syd1"}
    _grounded(boxes, draft)


def test_a_tool_error_is_said_plainly(boxes):
    draft = OfflineProposer().draft(boxes.ask("drift of syd1 prod on 2026-11-25"))
    assert [c["status"] for c in draft.tool_calls] == ["error", "error"]  # the roll-up and the revoked listing
    assert ("- get_drift_status (syd1 prod) could not answer: drift_scores: no platform partition materialised for "
            "2026-11-25.") in draft.answer


def test_an_off_topic_intent_is_answered_unsure_with_what_the_agent_can_do(boxes):
    draft = OfflineProposer().draft(boxes.ask("tell me a joke about cats"))
    assert draft.task_type == "answer" and draft.tool_calls == ()
    assert "I am not sure what you are asking" in draft.answer and "It can answer questions or propose:" in draft.answer
    assert draft.proposal["task_type"] == "answer"


def test_security_sbom_answer_cites_images_and_vms(boxes):
    draft = OfflineProposer().draft(boxes.ask("which vms have openssl@<3.0.8"))
    assert (draft.agent, draft.task_type) == ("security", "answer")
    results = _grounded(boxes, draft)
    sbom = next(r for t, _, r in results if t == "sbom_query")
    assert f"{sbom['vms_affected']} VMs run those images" in draft.answer
    assert [(i["version"]) for i in sbom["images"]] == ["1.0", "1.1"]


def test_the_same_intent_gives_the_same_draft(boxes):
    proposer = OfflineProposer(today=DAY)
    first = proposer.draft(boxes.ask("Patch the revoked images in SYD1 prod"))
    second = OfflineProposer(today=DAY).draft(boxes.ask("Patch the revoked images in SYD1 prod"))
    assert first == second


def test_every_routed_pair_proposes_within_its_agent(boxes):
    seen = {}
    for example in load_corpus():
        if (example.agent, example.task_type) in seen:
            continue
        text = example.text
        for slot, value in FILL.items():
            text = text.replace(slot, value)
        seen[(example.agent, example.task_type)] = draft = OfflineProposer(today=DAY).draft(boxes.ask(text))
        agent = shipped_agents()[draft.agent]
        assert {c["name"] for c in draft.tool_calls} <= set(agent.tools), text
        if draft.proposal is not None:
            assert violations(parse_proposal(draft.proposal)) == [], text
        _grounded(boxes, draft, ("ubuntu-22",))
    assert len(seen) == 20


@pytest.mark.slow
def test_offline_answers_over_a_full_sample_day(materialized_day, tmp_path):
    root, day = materialized_day
    wh = Warehouse(str(root))
    boxes = Boxes(wh, f"sqlite:///{tmp_path / 'audit.db'}")
    proposer = OfflineProposer()
    draft = proposer.draft(boxes.ask("which prod VMs in syd1 still run revoked images?"))
    assert (draft.agent, draft.task_type) == ("drift", "answer")
    _grounded(boxes, draft)
    files = [str(p) for p in Path(root).glob(f"drift_scores/date={day}/platform=*/part.parquet")]
    revoked, vms = duckdb.sql(f"SELECT sum(revoked), sum(vms) FROM read_parquet({files!r}) "
                              "WHERE site = 'syd1' AND environment = 'prod'").fetchall()[0]
    cited = {c.name: c.value for c in draft.citations}
    assert (cited["sum(rows[].revoked)"], cited["sum(rows[].vms)"]) == (revoked, vms)
    assert f"{vms:,} VMs" in draft.answer and f"{revoked:,} on revoked images" in draft.answer
    fleet = proposer.draft(boxes.ask("which sites drift the most"))
    assert len([c for c in fleet.tool_calls if c["name"] == "get_drift_status"]) == 4  # one per platform: no row cap hit
    assert "truncated" not in fleet.answer
    _grounded(boxes, fleet)
    for intent in ("patch the revoked images in syd1 dev", "simulate failover of sin1 prod",
                   "what versions of rhel 9 do we have", "are we exposed to openssl < 3.0.8 in prod",
                   "compliance report for lon1 staging", "rightsize aws dev vms in nyc1"):
        draft = proposer.draft(boxes.ask(intent))
        assert draft.tool_calls and all(c["status"] == "ok" for c in draft.tool_calls), (intent, draft.answer)
        _grounded(boxes, draft, ("debian-12", "rhel-9", "ubuntu-22.04", "windows-2022"))
        if draft.task_type != "answer":
            assert violations(parse_proposal(draft.proposal)) == []
