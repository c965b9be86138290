"""The router's corpus and tool plans: the shipped files load, and each kind of bad entry stops the
load with the entry named."""

from __future__ import annotations

from collections import Counter

import pytest

from qlrf.ai.agents import shipped_agents
from qlrf.ai.router.corpus import CorpusError, load_corpus
from qlrf.ai.router.plans import PlanError, load_plans, shipped_plans


def test_shipped_corpus_covers_every_pair_the_catalogue_allows():
    counts = Counter((e.agent, e.task_type) for e in load_corpus())
    allowed = {(a.name, t) for a in shipped_agents().values() for t in a.task_types}
    assert set(counts) == allowed
    assert min(counts.values()) >= 12, counts


def _corpus(tmp_path, body: str):
    path = tmp_path / "corpus.yaml"
    path.write_text("version: 1\nintents:\n" + body)
    return path


@pytest.mark.parametrize(("body", "message"), [
    ("  wizard:\n    answer: [hi]\n", "intents.wizard: unknown agent"),
    ("  drift:\n    reboot:\n      - reboot {site}\n", "intents.drift.reboot: unknown task type"),
    ("  drift:\n    rightsize:\n      - shrink {site}\n", "intents.drift.rightsize: agent 'drift' may not propose 'rightsize'"),
    ("  drift:\n    answer:\n      - drift of {region}\n", "intents.drift.answer[0]: unknown placeholder {region}"),
    ("  drift:\n    answer:\n      - drift of {site}\n      - Drift  of {site}\n",
     "intents.drift.answer[1]: repeats intents.drift.answer[0]"),
    ("  drift:\n    answer: ['  ']\n", "intents.drift.answer[0]: must be a non-blank string"),
    ("  drift:\n    answer: []\n", "intents.drift.answer: must be a non-empty list"),
])
def test_a_bad_corpus_entry_stops_the_load_naming_it(tmp_path, body, message):
    path = _corpus(tmp_path, body)
    with pytest.raises(CorpusError) as err:
        load_corpus(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unreadable_corpus_names_the_file(tmp_path):
    path = tmp_path / "corpus.yaml"
    path.write_text("version: 1\nintents:\n  drift: [unclosed\n")
    with pytest.raises(CorpusError, match="cannot read the router corpus"):
        load_corpus(path)
    path.write_text("version: 2\nintents: {}\n")
    with pytest.raises(CorpusError, match="expected 'version: 1'"):
        load_corpus(path)


def test_shipped_plans_cover_every_pair_with_the_agents_own_tools():
    plans = shipped_plans()
    for agent in shipped_agents().values():
        for task_type in agent.task_types:
            steps = plans.for_route(agent.name, task_type)
            assert steps and {s.tool for s in steps} <= set(agent.tools), (agent.name, task_type)


def _plans(tmp_path, steps: str, plans: str):
    path = tmp_path / "plans.yaml"
    full = "".join(f"  {a}:\n    " + "\n    ".join(f"{t}: [s]" for t in ag.task_types) + "\n"
                   for a, ag in shipped_agents().items() if a != "cost")
    path.write_text(f"version: 1\nsteps:\n{steps}plans:\n{full}{plans}")
    return path


def test_a_plan_step_outside_the_agents_tools_stops_the_load(tmp_path):
    steps = "  s: {tool: query_assets}\n  bad: {tool: sbom_query, args: [package], needs: [package]}\n"
    path = _plans(tmp_path, steps, "  cost:\n    answer: [bad]\n    rightsize: [s]\n")
    with pytest.raises(PlanError, match=r"plans\.cost\.answer: step 'bad' calls 'sbom_query', which agent 'cost' may not"):
        load_plans(path)


def test_a_missing_plan_or_unknown_parameter_stops_the_load(tmp_path):
    path = _plans(tmp_path, "  s: {tool: query_assets}\n", "  cost:\n    answer: [s]\n")
    with pytest.raises(PlanError, match=r"plans\.cost\.rightsize: missing"):
        load_plans(path)
    path = _plans(tmp_path, "  s: {tool: query_assets, args: [region]}\n", "  cost:\n    answer: [s]\n    rightsize: [s]\n")
    with pytest.raises(PlanError, match=r"steps\.s: unknown parameter 'region'"):
        load_plans(path)


def test_a_rollup_fans_out_per_platform_only_when_one_call_would_hit_the_row_cap():
    from qlrf.ai.router import Vocabulary
    from qlrf.ai.router.params import Params
    from qlrf.ai.router.plans import calls

    step = shipped_plans().steps["drift_rollup"]
    vocab = Vocabulary(sites=tuple(f"s{i}x" for i in range(7)), platforms=("aws", "azure", "gcp", "vsphere"))
    assert list(calls(step, Params(), vocab)) == [{"platform": p} for p in vocab.platforms]  # 4 x 7 x 3 rows > 50
    assert list(calls(step, Params(environment="prod"), vocab)) == [{"environment": "prod"}]  # 28 rows fit
    assert list(calls(step, Params(site="s1x"), vocab)) == [{"site": "s1x"}]
    assert list(calls(step, Params(asset_ids=("i-1",)), vocab)) == []  # the one-VM step answers instead
