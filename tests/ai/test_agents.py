"""The agent catalogue: the shipped eight load, bad catalogues fail naming agent and field, specs are checked."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qlrf.ai.agents import (
    AI_DIR,
    CATALOGUE_PATH,
    COMMON_PROMPT,
    PLANNED_TOOLS,
    AgentCatalogueError,
    is_allowed,
    load_agents,
    shipped_agents,
    violations,
)
from qlrf.ai.taskspec import AGENTS, TASK_TYPES, parse_proposal


def test_the_shipped_catalogue_declares_the_eight_agents_in_order():
    agents = load_agents()
    assert tuple(agents) == AGENTS == ("drift", "patch", "compliance", "incident", "dr", "cost", "security", "image")
    assert all(agent.name == name and agent.purpose for name, agent in agents.items())


def test_every_prompt_file_exists_and_the_system_prompt_starts_with_the_shared_rules():
    common = (AI_DIR / COMMON_PROMPT).read_text()
    for agent in shipped_agents().values():
        assert agent.prompt_path().is_file(), agent.name
        own = agent.prompt_path().read_text()
        assert agent.system_prompt() == common + "\n" + own
        assert own.lower().startswith(f"# {agent.name} agent")


def test_every_task_type_and_every_planned_tool_belongs_to_some_agent():
    agents = shipped_agents().values()
    assert {t for a in agents for t in a.task_types} == set(TASK_TYPES)
    assert {t for a in agents for t in a.tools} == set(PLANNED_TOOLS)
    assert all("answer" in a.task_types for a in agents)


def write_catalogue(tmp_path: Path, edit) -> Path:
    """A copy of the shipped catalogue and prompts under tmp_path, with ``edit`` applied to its document."""
    doc = yaml.safe_load(CATALOGUE_PATH.read_text())
    edit(doc)
    (tmp_path / "agent_prompts").mkdir()
    for prompt in (AI_DIR / "agent_prompts").glob("*.md"):
        (tmp_path / "agent_prompts" / prompt.name).write_text(prompt.read_text())
    path = tmp_path / "agents.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_an_unchanged_copy_loads_like_the_shipped_one(tmp_path):
    assert dict(load_agents(write_catalogue(tmp_path, lambda doc: None))) == dict(shipped_agents())


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["agents"]["cost"]["tools"].append("run_shell"), "agent 'cost': tools: unknown tool 'run_shell'"),
        (lambda d: d["agents"]["dr"]["task_types"].append("reboot"), "agent 'dr': task_types: unknown task type 'reboot'"),
        (lambda d: d["agents"]["image"]["tools"].append("sbom_query"), "agent 'image': tools: lists a tool twice"),
        (lambda d: d["agents"]["drift"].update(prompt="agent_prompts/nope.md"), "agent 'drift': prompt: file"),
        (lambda d: d["agents"]["patch"].pop("purpose"), "agent 'patch': purpose: Field required"),
        (lambda d: d["agents"]["patch"].update(model="gpt"), "agent 'patch': model: Extra inputs"),
        (lambda d: d["agents"]["security"].update(tools=[]), "agent 'security': tools:"),
        (lambda d: d["agents"].pop("incident"), "missing ['incident']"),
        (lambda d: d["agents"].update(sales={}), "unknown ['sales']"),
        (lambda d: d.update(version=2), "version:"),
    ],
)
def test_a_bad_catalogue_fails_naming_the_agent_and_field(tmp_path, edit, expected):
    with pytest.raises(AgentCatalogueError) as raised:
        load_agents(write_catalogue(tmp_path, edit))
    assert expected in str(raised.value)


def test_an_empty_prompt_file_is_refused(tmp_path):
    path = write_catalogue(tmp_path, lambda doc: None)
    (tmp_path / "agent_prompts" / "cost.md").write_text("  \n")
    with pytest.raises(AgentCatalogueError, match="agent 'cost': prompt: .* missing or empty"):
        load_agents(path)


def test_an_unreadable_catalogue_is_a_clear_error(tmp_path):
    with pytest.raises(AgentCatalogueError, match="cannot read"):
        load_agents(tmp_path / "absent.yaml")


def spec(**overrides):
    body = {"intent": "how much would rightsizing syd1 dev save?", "agent": "cost", "task_type": "rightsize",
            "tool_calls": [{"name": "estimate_cost", "status": "ok"}]}
    return parse_proposal({**body, **overrides})


def test_a_spec_within_its_agent_is_allowed():
    assert violations(spec()) == [] and is_allowed(spec())


def test_a_task_type_outside_the_agent_is_named():
    assert violations(spec(task_type="remediate_drift")) == [
        "task_type: agent 'cost' may not propose 'remediate_drift' (allowed: answer, rightsize)"
    ]


def test_a_tool_the_agent_may_not_call_is_named_unless_it_was_refused():
    calls = [{"name": "estimate_cost", "status": "ok"}, {"name": "query_audit", "status": "error"},
             {"name": "sbom_query", "status": "refused"}]
    assert violations(spec(tool_calls=calls)) == ["tool_calls.1.name: agent 'cost' may not call 'query_audit'"]
    assert not is_allowed(spec(tool_calls=calls))


def test_violations_reads_a_given_catalogue(tmp_path):
    widened = write_catalogue(tmp_path, lambda d: d["agents"]["cost"]["task_types"].append("remediate_drift"))
    assert violations(spec(task_type="remediate_drift"), load_agents(widened)) == []


def test_every_built_tool_is_a_planned_one_and_the_rest_are_named():
    """The agents may only name planned tools, and since issue 10 item 3 every planned tool is built."""
    from qlrf.ai.agents import PLANNED_TOOLS
    from qlrf.ai.tools import READ_ONLY_TOOLS

    built = {tool.name for tool in READ_ONLY_TOOLS}
    assert built == set(PLANNED_TOOLS)
